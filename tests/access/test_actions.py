"""What each API call needs, per the SageMaker API permissions reference: the actions and the
lower-cased ARNs they are checked against."""

from __future__ import annotations

import pytest

from tideserve.access.actions import RUNTIME, Account, needs

ACCOUNT = Account("us-east-1", "123456789012",
                  lambda name: f"arn:aws:iam::123456789012:user/{name}")
SM = "arn:aws:sagemaker:us-east-1:123456789012"


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("sagemaker", "DeleteEndpoint", {"EndpointName": "MyEp"},
     (("sagemaker:DeleteEndpoint", f"{SM}:endpoint/myep"),)),
    ("sagemaker", "CreateEndpoint", {"EndpointName": "E", "EndpointConfigName": "C"},
     (("sagemaker:CreateEndpoint", f"{SM}:endpoint/e"),
      ("sagemaker:CreateEndpoint", f"{SM}:endpoint-config/c"))),
    ("sagemaker", "DescribeEndpointConfig", {"EndpointConfigName": "C"},
     (("sagemaker:DescribeEndpointConfig", f"{SM}:endpoint-config/c"),)),
    ("sagemaker", "CreateModel", {"ModelName": "M", "ExecutionRoleArn": "arn:aws:iam::1:role/r"},
     (("sagemaker:CreateModel", f"{SM}:model/m"), ("iam:PassRole", "arn:aws:iam::1:role/r"))),
    ("sagemaker", "DescribeTransformJob", {"TransformJobName": "J"},
     (("sagemaker:DescribeTransformJob", f"{SM}:transform-job/j"),)),
    ("sagemaker", "ListEndpoints", {"NameContains": "x"}, (("sagemaker:ListEndpoints", "*"),)),
    (RUNTIME, "InvokeEndpoint", {"EndpointName": "MyEp"},
     (("sagemaker:InvokeEndpoint", f"{SM}:endpoint/myep"),)),
    ("monitoring", "PutMetricAlarm", {"AlarmName": "high"},
     (("cloudwatch:PutMetricAlarm", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:high"),)),
    ("application-autoscaling", "PutScalingPolicy", {"PolicyName": "p"},
     (("application-autoscaling:PutScalingPolicy", "*"),)),
    ("iam", "CreateAccessKey", {}, (("iam:CreateAccessKey",
                                     "arn:aws:iam::123456789012:user/caller"),)),
    ("iam", "DeleteUser", {"UserName": "bob"},
     (("iam:DeleteUser", "arn:aws:iam::123456789012:user/bob"),)),
    ("s3", "PutObject", {"Bucket": "b", "Key": "k/x"}, (("s3:PutObject", "arn:aws:s3:::b/k/x"),)),
    ("s3", "ListObjectsV2", {"Bucket": "b"}, (("s3:ListBucket", "arn:aws:s3:::b"),)),
    ("logs", "FilterLogEvents", {"logGroupName": "/aws/sagemaker/Endpoints/e"},
     (("logs:FilterLogEvents",
       "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/e:*"),)),
    ("cloudtrail", "LookupEvents", {}, (("cloudtrail:LookupEvents", "*"),)),
])
def test_needs(service, operation, params, expected):
    assert needs(ACCOUNT, service, operation, params, "caller") == expected
