"""The traffic crawlers' role, least privilege, proven offline (issue 21.1).

glue-crawler-traffic (infra/pipelines.yaml) is trusted by Glue only, reads only the two
crawled prefixes, only adds partitions to the two traffic tables and only takes, deletes and purges
the transformed table's S3 events from their queue (S3 event mode); the traffic pipeline's
role may start and watch exactly those two crawlers. Judged on the policies as provisioned
(read back from IAM) by localaws' policy evaluation, and by starting the crawlers with IAM
enforced; a template without the crawler's read statement, or without its event-queue
statement, makes StartCrawler refused.
"""

from __future__ import annotations

import json

import pytest
import yaml

from infra.provision import TEMPLATE
from localaws.iam.policy import Decision, evaluate
from tests.security.test_least_privilege import _refused, refusals

BUCKET = "pipelines-data-lake"
GLUE = "arn:aws:glue:us-east-1:123456789012"
S3 = f"arn:aws:s3:::{BUCKET}"
SQS = "arn:aws:sqs:us-east-1:123456789012"
EVENTS = f"{SQS}:traffic-transformed-events"  # traffic_transformed_crawler's S3 event queue
VIA_SQS = {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}


def provisioned_policies(stack, role: str) -> list[dict]:
    iam = stack.client("iam")
    documents = []
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
        document = document["PolicyVersion"]["Document"]
        documents.append(json.loads(document) if isinstance(document, str) else document)
    return documents


CRAWLER_ALLOWED = [
    ("s3:GetObject", f"{S3}/traffic/raw/2025/01/01/00/firehose-1.gz", {}),
    ("s3:GetObject", f"{S3}/traffic/transformed/event_day=2025-01-01/hour=0/part", {}),
    ("s3:ListBucket", S3, {"s3:prefix": "traffic/raw/"}),
    ("s3:ListBucket", S3, {"s3:prefix": "traffic/transformed/event_day=2025-01-01/"}),
    ("glue:GetTable", f"{GLUE}:table/traffic/raw", {}),
    ("glue:BatchCreatePartition", f"{GLUE}:table/traffic/raw", {}),
    ("glue:BatchCreatePartition", f"{GLUE}:table/traffic/events_by_event_time", {}),
    ("logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:/aws-glue/crawlers:log-stream:x", {}),
    # S3 event mode: what the crawl does with its queue (localaws.iam.enforcement.EVENT_QUEUE_ACTIONS)
    ("sqs:GetQueueUrl", EVENTS, {}),
    ("sqs:GetQueueAttributes", EVENTS, {}),
    ("sqs:ReceiveMessage", EVENTS, {}),
    ("sqs:DeleteMessage", EVENTS, {}),
    ("sqs:PurgeQueue", EVENTS, {}),  # before a crawl that lists the whole table
    ("kms:Decrypt", "DATA_KEY", VIA_SQS),  # the queue is encrypted with the data key
]
CRAWLER_REFUSED = [
    ("s3:GetObject", f"{S3}/market/raw/page.json", {}),  # another pipeline's data
    ("s3:GetObject", f"{S3}/traffic/other/x", {}),
    ("s3:PutObject", f"{S3}/traffic/raw/2025/01/01/00/x", {}),  # a crawler writes no data
    ("s3:DeleteObject", f"{S3}/traffic/transformed/x", {}),
    ("s3:ListBucket", S3, {"s3:prefix": "covid/"}),
    ("s3:ListBucket", S3, {"s3:prefix": ""}),
    ("glue:UpdateTable", f"{GLUE}:table/traffic/raw", {}),  # LOG: the declared schema stays
    ("glue:CreateTable", f"{GLUE}:table/traffic/raw", {}),
    ("glue:DeleteTable", f"{GLUE}:table/traffic/events_by_event_time", {}),
    ("glue:BatchDeletePartition", f"{GLUE}:table/traffic/events_by_event_time", {}),
    ("glue:BatchCreatePartition", f"{GLUE}:table/traffic/other_table", {}),
    ("glue:BatchCreatePartition", f"{GLUE}:table/market/raw", {}),
    ("dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/market_orders", {}),
    ("sqs:SendMessage", EVENTS, {}),  # only S3 sends to it
    ("sqs:SetQueueAttributes", EVENTS, {}),  # could rewrite the queue's policy
    ("sqs:DeleteQueue", EVENTS, {}),
    ("sqs:ReceiveMessage", f"{SQS}:directory-events", {}),  # another pipeline's events
    ("sqs:ReceiveMessage", f"{EVENTS}-dlq", {}),
    ("kms:Decrypt", "DATA_KEY", {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}),
    ("kms:GenerateDataKey", "DATA_KEY", VIA_SQS),
]


def _data_key_arn(stack) -> str:
    """The key the event queue is encrypted with (the template's DataKey)."""
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName="traffic-transformed-events")["QueueUrl"]
    key_id = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"]
    return f"arn:aws:kms:us-east-1:123456789012:key/{key_id['KmsMasterKeyId']}"  # Ref DataKey: its id


def _with_key(rules, key_arn):
    return [(action, key_arn if resource == "DATA_KEY" else resource, context) for action, resource, context in rules]


def test_the_crawler_role_allows_what_a_crawl_does_and_nothing_else(least_privilege):
    stack = least_privilege()
    policies = provisioned_policies(stack, "glue-crawler-traffic")
    data_key = _data_key_arn(stack)
    for action, resource, context in _with_key(CRAWLER_ALLOWED, data_key):
        assert evaluate(policies, action, resource, context) is Decision.ALLOWED, (action, resource)
    for action, resource, context in _with_key(CRAWLER_REFUSED, data_key):
        assert evaluate(policies, action, resource, context) is Decision.IMPLICIT_DENY, (action, resource)


def test_the_traffic_role_starts_and_watches_exactly_the_two_crawlers(least_privilege):
    stack = least_privilege()
    policies = provisioned_policies(stack, "pipeline-traffic-repartition")
    for crawler in ("traffic_raw_crawler", "traffic_transformed_crawler"):
        for action in ("glue:StartCrawler", "glue:GetCrawler"):
            assert evaluate(policies, action, f"{GLUE}:crawler/{crawler}") is Decision.ALLOWED
    for action in ("glue:StartCrawler", "glue:UpdateCrawler", "glue:CreateCrawler", "glue:DeleteCrawler"):
        assert evaluate(policies, action, f"{GLUE}:crawler/someone_elses") is Decision.IMPLICIT_DENY
    for action in ("glue:UpdateCrawler", "glue:StopCrawler"):
        assert evaluate(policies, action, f"{GLUE}:crawler/traffic_raw_crawler") is Decision.IMPLICIT_DENY
    # StartCrawler passes no role: the pipeline cannot hand the crawler role to anything
    assert evaluate(policies, "iam:PassRole", "arn:aws:iam::123456789012:role/glue-crawler-traffic") is (
        Decision.IMPLICIT_DENY
    )


def test_both_crawlers_start_under_enforced_iam_and_the_workers_cannot_assume_their_role(least_privilege):
    from pipelines.traffic.lake import clients

    stack = least_privilege()
    stack.client("s3").put_object(Bucket=BUCKET, Key="traffic/raw/2025/01/01/00/part.json", Body=b'{"a": "1"}\n')
    glue, _s3 = clients("aws_traffic")
    glue.start_crawler(Name="traffic_raw_crawler")
    glue.get_crawler(Name="traffic_raw_crawler")
    assert refusals(stack) == []
    stack.client("glue").create_crawler(
        Name="someone_elses", Role="arn:aws:iam::123456789012:role/glue-crawler-traffic", DatabaseName="traffic",
        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/traffic/raw/"}]},
    )  # fmt: skip
    assert _refused(lambda: glue.start_crawler(Name="someone_elses"))


def _template_without_crawler_statement(tmp_path, sid: str):
    """A copy of the template whose crawler role lacks the statement ``sid``."""
    template = yaml.safe_load(TEMPLATE.read_text())
    document = template["Resources"]["TrafficCrawlerPolicy"]["Properties"]["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != sid]
    path = tmp_path / f"pipelines-crawler-without-{sid}.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


@pytest.mark.parametrize("crawler_reads", [True, False])
def test_the_raw_crawl_needs_the_crawler_roles_read_statement(least_privilege, tmp_path, crawler_reads):
    from pipelines.traffic.lake import clients

    stack = least_privilege(TEMPLATE if crawler_reads else _template_without_crawler_statement(tmp_path, "ReadTheCrawledPrefixes"))
    stack.client("s3").put_object(Bucket=BUCKET, Key="traffic/raw/2025/01/01/00/part.json", Body=b'{"a": "1"}\n')
    glue, _s3 = clients("aws_traffic")
    if crawler_reads:
        glue.start_crawler(Name="traffic_raw_crawler")
        assert refusals(stack) == []
    else:
        assert _refused(lambda: glue.start_crawler(Name="traffic_raw_crawler"))
        assert ("s3:GetObject", f"{S3}/traffic/raw/object") in refusals(stack)


@pytest.mark.parametrize("queue_use", [True, False])
def test_the_target_recrawl_needs_the_crawler_roles_event_queue_statement(least_privilege, tmp_path, queue_use):
    """S3 event mode: the crawl takes its events from the queue as the crawler's role."""
    from pipelines.traffic.lake import clients

    stack = least_privilege(TEMPLATE if queue_use else _template_without_crawler_statement(tmp_path, "ConsumeTheTransformedTablesEvents"))
    glue, _s3 = clients("aws_traffic")
    if queue_use:
        glue.start_crawler(Name="traffic_transformed_crawler")
        assert refusals(stack) == []
    else:
        assert _refused(lambda: glue.start_crawler(Name="traffic_transformed_crawler"))
        assert ("sqs:GetQueueUrl", EVENTS) in refusals(stack)
