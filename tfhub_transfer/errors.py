"""User-facing errors: each says what was wrong and how to fix it."""


class TransferError(Exception):
    """Base class for every error this package raises on bad input or setup."""


class DataError(TransferError, ValueError):
    """Labelled data that cannot be used as given (file, column, line)."""


class EncoderError(TransferError, ValueError):
    """An encoder or preprocessor that cannot be found, loaded or used."""


class ConfigError(TransferError, ValueError):
    """Options that do not fit together."""


class TrainingDiverged(TransferError, RuntimeError):
    """The loss or the weights stopped being finite during training."""


class ExportError(TransferError, FileNotFoundError):
    """An exported model that is missing, incomplete or damaged."""
