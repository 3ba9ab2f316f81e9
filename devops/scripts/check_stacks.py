"""Check what the deploy left in (moto's) AWS, and print the image the service runs.

Run by deploy-test.sh after the playbook, with AWS_ENDPOINT_URL pointing at
moto. Every check reads back what CloudFormation created through the service
APIs, so it proves the templates wire resources together as intended (as far
as moto models them; see devops/README.md for what it does not).
"""

from __future__ import annotations

import argparse
import json
import sys

import boto3

STACKS = ("ecr", "network", "database", "service", "monitoring")
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", file=sys.stderr)
    if not ok:
        failures.append(what)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--repository", required=True, help="registry/repository the image was pushed to")
    args = ap.parse_args()
    aws = boto3.session.Session(region_name=args.region)
    cfn = aws.client("cloudformation")

    outputs: dict[str, dict[str, str]] = {}
    for name in STACKS:
        stack = cfn.describe_stacks(StackName=f"birthday-api-{args.env}-{name}")["Stacks"][0]
        check(stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), f"stack {name}: {stack['StackStatus']}")
        tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
        check(tags.get("environment") == args.env, f"stack {name} tagged environment={args.env}")
        outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    expected = {
        "ecr": ["RepositoryName", "RepositoryUri"],
        "network": ["VpcId", "PublicSubnetIds", "PrivateSubnetIds"],
        "database": ["DatabaseUrlSecretArn", "ClientSecurityGroupId", "DatabaseInstanceId", "DatabaseEndpoint"],
        "service": ["ServiceUrl", "LoadBalancerDnsName", "LoadBalancerArn", "TargetGroupArn",
                    "ClusterName", "ServiceName", "LogGroupName"],
        "monitoring": ["AlarmTopicArn", "DashboardName"],
    }
    for name, keys in expected.items():
        for key in keys:
            check(bool(outputs[name].get(key)), f"output {name}.{key}")
    svc_out, db_out = outputs["service"], outputs["database"]
    check(svc_out["ServiceUrl"] == f"http://{svc_out['LoadBalancerDnsName']}",
          "ServiceUrl is plain HTTP on the load balancer (staging has no certificate)")
    check(len(outputs["network"]["PrivateSubnetIds"].split(",")) == 2, "two private subnets")

    repo = aws.client("ecr").describe_repositories(repositoryNames=[outputs["ecr"]["RepositoryName"]])["repositories"][0]
    check(repo["imageTagMutability"] == "IMMUTABLE", "ECR tags are immutable")

    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster=svc_out["ClusterName"], services=[svc_out["ServiceName"]])["services"][0]
    taskdef = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = taskdef["containerDefinitions"][0]
    image = container["image"]
    check(image.startswith(args.repository + ":"), f"service image {image} is in {args.repository}")
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    check(env.get("BIRTHDAY_LISTEN") == "0.0.0.0:8080" and env.get("BIRTHDAY_ADMIN_LISTEN") == "0.0.0.0:9090",
          "container listens on 0.0.0.0:8080 and :9090")
    secrets = {s["name"]: s["valueFrom"] for s in container.get("secrets", [])}
    check(secrets.get("DATABASE_URL") == db_out["DatabaseUrlSecretArn"], "DATABASE_URL comes from the database secret")
    check("DATABASE_URL" not in env, "DATABASE_URL is not a plain environment variable")
    check(container.get("readonlyRootFilesystem") is True, "read-only root file system")
    log_opts = container.get("logConfiguration", {}).get("options", {})
    check(log_opts.get("awslogs-group") == svc_out["LogGroupName"], "container logs go to the stack's log group")

    sm = aws.client("secretsmanager")
    secret = sm.describe_secret(SecretId=db_out["DatabaseUrlSecretArn"])
    check(secret["Name"] == f"birthday-api/{args.env}/database-url", "database URL secret exists")
    value = sm.get_secret_value(SecretId=db_out["DatabaseUrlSecretArn"])["SecretString"]
    check(value.startswith("postgres://") and value.endswith("/birthday?sslmode=require")
          and db_out["DatabaseEndpoint"] in value, "secret holds a postgres:// URL to the RDS endpoint with TLS")

    elb = aws.client("elbv2")
    groups = elb.describe_target_groups(LoadBalancerArn=svc_out["LoadBalancerArn"])["TargetGroups"]
    main_tg = next(g for g in groups if g["TargetGroupArn"] == svc_out["TargetGroupArn"])
    check(main_tg["Port"] == 8080 and main_tg["TargetType"] == "ip", "target group: port 8080, ip targets")
    check(main_tg["HealthCheckPort"] == "9090" and main_tg["HealthCheckPath"] == "/healthz",
          "health check on the operations port's /healthz")
    check(main_tg["Matcher"]["HttpCode"] == "200", "only 200 counts as healthy")
    listeners = elb.describe_listeners(LoadBalancerArn=svc_out["LoadBalancerArn"])["Listeners"]
    check([(l["Port"], l["Protocol"]) for l in listeners] == [(80, "HTTP")], "one HTTP listener (no certificate)")
    rules = elb.describe_rules(ListenerArn=listeners[0]["ListenerArn"])["Rules"]
    paths = [c.get("PathPatternConfig", {}).get("Values", c.get("Values")) for r in rules for c in r.get("Conditions", [])
             if c.get("Field") == "path-pattern"]
    check([["/healthz"]] == paths, "listener rule routes /healthz (only) to the operations port")

    lb = elb.describe_load_balancers(LoadBalancerArns=[svc_out["LoadBalancerArn"]])["LoadBalancers"][0]
    ec2 = aws.client("ec2")
    lb_sg = ec2.describe_security_groups(GroupIds=lb["SecurityGroups"])["SecurityGroups"][0]
    open_ports = sorted(p["FromPort"] for p in lb_sg["IpPermissions"]
                        if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", [])))
    check(open_ports == [80, 443], f"load balancer admits 80 and 443 from anywhere ({open_ports})")
    task_sgs = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {}).get("securityGroups", [])
    if task_sgs:
        check(db_out["ClientSecurityGroupId"] in task_sgs, "tasks join the database client group")

    rds = aws.client("rds").describe_db_instances(DBInstanceIdentifier=db_out["DatabaseInstanceId"])["DBInstances"][0]
    check(rds["Engine"] == "postgres", "RDS engine is postgres")
    check(rds["StorageEncrypted"] is True and rds["PubliclyAccessible"] is False, "RDS encrypted and private")
    check(rds["MultiAZ"] is False, "staging database is single-AZ (inventory)")

    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=svc_out["LogGroupName"])["logGroups"]
    check(groups and groups[0].get("retentionInDays") == 14, "log group keeps 14 days (inventory)")

    body = aws.client("cloudwatch").get_dashboard(DashboardName=outputs["monitoring"]["DashboardName"])["DashboardBody"]
    try:
        widgets = json.loads(body)["widgets"]
        check(len(widgets) >= 6, f"dashboard body is JSON with {len(widgets)} widgets")
    except ValueError as e:
        check(False, f"dashboard body is JSON ({e})")

    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print(image)


if __name__ == "__main__":
    main()
