"""Users, access keys and IAM policies: the `iam` API subset, and the authorisation every AWS
request passes after SigV4 (see policy.py for evaluation, actions.py for what a call needs)."""
