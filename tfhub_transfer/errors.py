"""User-facing errors: each says what was wrong and how to fix it."""


class TransferError(Exception):
    """Base class for every error this package raises on bad input or setup.

    Its message names what was wrong (file, line, column, argument or flag) and how to fix it; the CLI
    prints it as one line (`--debug` shows the traceback).

    Args:
      message: the one-line explanation.

    Example:
      >>> from tfhub_transfer import ConfigError, TrainConfig, TransferError
      >>> try:
      ...     TrainConfig.of(epoch=3)
      ... except TransferError as error:
      ...     print(type(error).__name__)
      ConfigError
    """


class DataError(TransferError, ValueError):
    """Labelled data that cannot be used as given (file, column, line).

    Args:
      message: the one-line explanation, naming what to fix.

    Example:
      >>> from tfhub_transfer import DataError, read_table
      >>> try:
      ...     read_table("missing.tsv", "text", "label")
      ... except DataError as error:
      ...     print("missing.tsv" in str(error))
      True
    """


class EncoderError(TransferError, ValueError):
    """An encoder or preprocessor that cannot be found, loaded or used.

    Args:
      message: the one-line explanation, naming what to fix.

    Example:
      >>> from tfhub_transfer import EncoderError, resolve_encoder
      >>> try:
      ...     resolve_encoder("no/such/encoder/dir")
      ... except EncoderError as error:
      ...     print(type(error).__name__)
      EncoderError
    """


class ConfigError(TransferError, ValueError):
    """Options that do not fit together.

    Args:
      message: the one-line explanation, naming what to fix.

    Example:
      >>> from tfhub_transfer import ConfigError, TrainConfig
      >>> from tfhub_transfer.jobs.options import check_options
      >>> try:
      ...     check_options(TrainConfig.of(batch_size=0))
      ... except ConfigError as error:
      ...     print(str(error))
      --batch-size 0: must be a whole number >= 1
    """


class TrainingDiverged(TransferError, RuntimeError):
    """The loss or the weights stopped being finite during training.

    Args:
      message: the one-line explanation, naming what to fix.

    Example:
      >>> from tfhub_transfer import TrainingDiverged, TransferError
      >>> issubclass(TrainingDiverged, TransferError)
      True
    """


class ExportError(TransferError, FileNotFoundError):
    """An exported model that is missing, incomplete or damaged.

    Args:
      message: the one-line explanation, naming what to fix.

    Example:
      >>> from tfhub_transfer import open_export
      >>> from tfhub_transfer.errors import ExportError
      >>> try:
      ...     open_export("no/such/export")
      ... except ExportError as error:
      ...     print(type(error).__name__)
      ExportError
    """
