"""Domain exceptions: every business failure the desk can name."""


class DeskPipelineError(Exception):
    """Base class of every error raised by desk_pipeline on purpose."""


class MissingColumnsError(DeskPipelineError):
    """A frame handed to a domain function lacks columns it needs."""


class InvalidRangeError(DeskPipelineError):
    """A date or time range is empty, reversed or outside the desk's calendar."""


class NoEndOfDayError(DeskPipelineError):
    """No end-of-day snapshot is stored for the requested book and day."""


class SettingsError(DeskPipelineError):
    """A DESK_* setting is mistyped or names something the desk cannot use (exit code 2).

    ``lines`` holds one ``DESK_X=value: what is wrong; what to do`` line per bad setting.
    """

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
