"""Domain exceptions: every business failure the desk can name."""


class DeskPipelineError(Exception):
    """Base class of every error raised by desk_pipeline on purpose."""


class MissingColumnsError(DeskPipelineError):
    """A frame handed to a domain function lacks columns it needs."""


class InvalidRangeError(DeskPipelineError):
    """A date or time range is empty, reversed or outside the desk's calendar."""


class NoEndOfDayError(DeskPipelineError):
    """No end-of-day snapshot is stored for the requested book and day."""
