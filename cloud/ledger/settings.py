"""The ledger's settings: the signing key (outside the database) and the head export."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from cloud.ledger.anchoring import AnchorSettings
from cloud.ledger.signing import LedgerSigner, SigningKeyError, load_signer


class LedgerSettings(BaseModel):
    """``COLDTRACE_CLOUD_LEDGER__SIGNING_KEY_FILE`` (a PEM file readable by the service only) or
    ``COLDTRACE_CLOUD_LEDGER__SIGNING_KEY`` (the PEM text or base64 of the 32 raw bytes, e.g. from
    a secret store); ``COLDTRACE_CLOUD_LEDGER__ANCHOR__FILE`` etc. for the head export."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_key_file: Path | None = None
    signing_key: SecretStr | None = None
    anchor: AnchorSettings = AnchorSettings()

    @model_validator(mode="after")
    def _one_key(self) -> LedgerSettings:
        if self.signing_key_file is not None and self.signing_key is not None:
            raise ValueError("give signing_key_file or signing_key, not both")
        return self

    def signer(self) -> LedgerSigner | None:
        """The key, read now (raises ``SigningKeyError`` when it cannot be read); None: unsigned."""
        if self.signing_key is not None:
            return load_signer(self.signing_key.get_secret_value().encode())
        if self.signing_key_file is None:
            return None
        try:
            data = self.signing_key_file.read_bytes()
        except OSError as err:
            raise SigningKeyError(f"cannot read {self.signing_key_file}: {err}") from err
        return load_signer(data)
