"""The audit trail: every control-plane call as a CloudTrail event, stored before its answer
is sent, and CloudTrail's LookupEvents to read it."""
