"""moto's server, plus the CloudFormation resource types the deploy test needs.

moto's CloudFormation skips resource types it does not model and drops every
output that refers to them. Two outputs the playbook passes on come from such
types, so this file models them on top of moto's own backends:

- AWS::SecretsManager::Secret (the database stack's DatabaseUrlSecretArn):
  the secret is really created, Ref gives its ARN;
- AWS::Backup::BackupVault (prod's DR vault, whose VaultArn the database
  stack's backup plan copies to): the vault is really created, Ref gives its
  name and GetAtt BackupVaultArn its ARN.

What it does not do (real CloudFormation does): resolve `{{resolve:...}}`
dynamic references. The secret's value is stored as the template wrote it.

It also mends one fidelity gap that would make the idempotence check lie:
moto stores `Type: Number` parameters as numbers and `List<...>` parameters
as lists, then compares them with the strings of an update request, so every
update of a stack with such a parameter "changes" it. CloudFormation compares parameter values as strings;
so does this server.

Usage: python moto_server.py -H 127.0.0.1 -p PORT (the arguments of moto_server).
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel
from moto.backup.models import backup_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.server import main


class CfnSecret(CloudFormationModel):
    """AWS::SecretsManager::Secret, enough for Ref and GenerateSecretString."""

    # moto files every model under the service named by its module path.
    __module__ = "deploy_test.secretsmanager"

    def __init__(self, arn: str, name: str) -> None:
        self.arn = arn
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CfnSecret:
        props = cloudformation_json.get("Properties", {})
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if value is None and generate is not None:
            alphabet = string.ascii_letters + string.digits
            password = "".join(
                secrets.choice(alphabet)
                for _ in range(int(generate.get("PasswordLength", 32)))
            )
            template = json.loads(generate.get("SecretStringTemplate", "{}"))
            template[generate.get("GenerateStringKey", "password")] = password
            value = json.dumps(template)
        backend = secretsmanager_backends[account_id][region_name]
        created = json.loads(
            backend.create_secret(
                name=props.get("Name", resource_name),
                secret_string=value,
                secret_binary=None,
                description=props.get("Description"),
                tags=props.get("Tags"),
                kms_key_id=props.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        return cls(created["ARN"], created["Name"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: CfnSecret,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CfnSecret:
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        return None


class CfnBackupVault(CloudFormationModel):
    """AWS::Backup::BackupVault: Ref (name) and GetAtt BackupVaultArn."""

    __module__ = "deploy_test.backup"

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "BackupVaultName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Backup::BackupVault"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("BackupVaultArn", "BackupVaultName")

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn if attribute_name == "BackupVaultArn" else self.name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CfnBackupVault:
        props = cloudformation_json.get("Properties", {})
        vault = backup_backends[account_id][region_name].create_backup_vault(
            backup_vault_name=props.get("BackupVaultName", resource_name),
            backup_vault_tags=props.get("BackupVaultTags", {}),
            encryption_key_arn=props.get("EncryptionKeyArn", ""),
            creator_request_id="",
        )
        return cls(vault.backup_vault_name, vault.backup_vault_arn)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: CfnBackupVault,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CfnBackupVault:
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        return None


def _as_strings(params: dict[str, Any]) -> dict[str, str]:
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in params.items()}


def _validate_different_update(
    self: CloudFormationResponse,
    incoming_params: list[dict[str, Any]] | None,
    stack_body: str,
    old_stack: Any,
) -> None:
    """Raise "No updates are to be performed." as CloudFormation does."""
    if incoming_params and stack_body:
        new = self._get_param_values(incoming_params, old_stack.stack_parameters)
        if old_stack.template == stack_body and _as_strings(new) == _as_strings(old_stack.stack_parameters):
            raise ValidationError(old_stack.name, message="No updates are to be performed.")


CloudFormationResponse._validate_different_update = _validate_different_update  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
