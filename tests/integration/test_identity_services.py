"""STS GetCallerIdentity and IAM GetRole, which SDKs and the AWS CLI call before anything else,
over the Query protocol against a real `tideserve up`, with boto3 and with `aws`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support import RunningServer

pytestmark = pytest.mark.integration


def test_get_caller_identity_names_the_signing_user(server: RunningServer):
    identity = server.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert identity["Arn"] == "arn:aws:iam::123456789012:user/admin"
    assert identity["UserId"].startswith("AIDA") and len(identity["UserId"]) == 21
    assert server.client("sts").get_caller_identity()["UserId"] == identity["UserId"]


def test_a_wrong_secret_is_refused_in_stss_own_words(server: RunningServer):
    import boto3

    key_id, _ = server.credentials()
    sts = boto3.client("sts", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id=key_id, aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as caught:
        sts.get_caller_identity()
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_get_role_answers_any_well_formed_name(server: RunningServer):
    iam = server.client("iam")
    role = iam.get_role(RoleName="SageMakerExecution")["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/SageMakerExecution"
    assert role["RoleName"] == "SageMakerExecution" and role["Path"] == "/"
    assert role["RoleId"].startswith("AROA")
    policy = role["AssumeRolePolicyDocument"]  # botocore un-escapes and parses it, as from IAM
    assert policy["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert iam.get_role(RoleName="SageMakerExecution")["Role"]["CreateDate"] == role["CreateDate"]


def test_get_role_refuses_a_malformed_name_as_iam_does(server: RunningServer):
    iam = server.client("iam")
    with pytest.raises(ClientError) as caught:
        iam.get_role(RoleName="no/slashes")
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_operation_tideserve_lacks_is_invalid_action(server: RunningServer):
    with pytest.raises(ClientError) as caught:
        server.client("iam").list_roles()
    assert caught.value.response["Error"]["Code"] == "InvalidAction"


def _aws() -> list[str]:
    beside = Path(sys.executable).with_name("aws")
    if beside.exists():
        return [sys.executable, str(beside)]
    found = shutil.which("aws")
    if found is None:
        pytest.fail("the AWS CLI is part of the test extra (pip install -e '.[test]')")
    return [found]


def test_aws_cli_get_caller_identity(server: RunningServer, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.state_dir / "credentials"),
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run(
        [*_aws(), "sts", "get-caller-identity", "--endpoint-url", server.url, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Arn"] == "arn:aws:iam::123456789012:user/admin"
    done = subprocess.run(
        [*_aws(), "iam", "get-role", "--role-name", "ml", "--endpoint-url", server.url],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Role"]["Arn"] == "arn:aws:iam::123456789012:role/ml"
