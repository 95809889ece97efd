"""Named errors. The CLI prints their message as one line and exits non-zero."""


class DfstreamError(Exception):
    """Base for every error that is the user's input, not a bug."""

    exit_code = 2


class InputPathError(DfstreamError):
    """A path given on the command line is missing or of the wrong kind."""


class ModelLoadError(DfstreamError):
    """A model file exists but cannot be used as the model asked for."""


class MetadataError(ModelLoadError):
    """An ONNX file lacks dfstream metadata or contradicts what the pipeline needs."""


class OptionError(DfstreamError):
    """Options that do not go together (an option of another recipe or mode)."""


class DatasetError(DfstreamError):
    """A dataset folder is empty, one-class or otherwise unusable."""


class ExportCheckError(DfstreamError):
    """An exported graph does not reproduce its framework model."""


class ProviderError(DfstreamError):
    """The requested ONNX Runtime execution provider is not available."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of a third-party exception, for embedding in a one-line error."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
