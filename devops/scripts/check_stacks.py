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
# What the inventories set, as the stacks should show it.
EXPECT = {
    "staging": {"https": False, "multi_az": False, "log_days": 14, "copy_region": None},
    "prod": {"https": True, "multi_az": True, "log_days": 90, "copy_region": "eu-central-1"},
}
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", file=sys.stderr)
    if not ok:
        failures.append(what)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", required=True, choices=sorted(EXPECT))
    ap.add_argument("--region", required=True)
    ap.add_argument("--repository", help="registry/repository the image was pushed to")
    ap.add_argument("--prepare", action="store_true",
                    help="create the certificate and hosted zone prod's inventory names; print them as Ansible extra vars")
    args = ap.parse_args()
    aws = boto3.session.Session(region_name=args.region)
    if args.prepare:
        prepare(aws)
        return
    expect = EXPECT[args.env]
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
    if expect["https"]:
        check(svc_out["ServiceUrl"].startswith("https://") and "." in svc_out["ServiceUrl"],
              f"ServiceUrl is HTTPS on the domain ({svc_out['ServiceUrl']})")
    else:
        check(svc_out["ServiceUrl"] == f"http://{svc_out['LoadBalancerDnsName']}",
              "ServiceUrl is plain HTTP on the load balancer (no certificate)")
    check(len(outputs["network"]["PrivateSubnetIds"].split(",")) == 2, "two private subnets")

    repo = aws.client("ecr").describe_repositories(repositoryNames=[outputs["ecr"]["RepositoryName"]])["repositories"][0]
    check(repo["imageTagMutability"] == "IMMUTABLE", "ECR tags are immutable")

    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster=svc_out["ClusterName"], services=[svc_out["ServiceName"]])["services"][0]
    taskdef = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = taskdef["containerDefinitions"][0]
    image = container["image"]
    if args.repository:
        check(image.startswith(args.repository + ":"), f"service image {image} is in {args.repository}")
    env = {e["name"]: e["value"] for e in container.get("environment", [])}
    check(env.get("BIRTHDAY_LISTEN") == "0.0.0.0:8080" and env.get("BIRTHDAY_ADMIN_LISTEN") == "0.0.0.0:9090",
          "container listens on 0.0.0.0:8080 and :9090")
    check(env.get("BIRTHDAY_LOG_FORMAT") == "json", "JSON logs")
    check(int(env.get("BIRTHDAY_SHUTDOWN_TIMEOUT_SECS", "999")) < container.get("stopTimeout", 30),
          "the service's drain timeout ends before ECS's SIGKILL")
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
    listeners = {l["Port"]: l for l in elb.describe_listeners(LoadBalancerArn=svc_out["LoadBalancerArn"])["Listeners"]}
    if expect["https"]:
        check(sorted(listeners) == [80, 443] and listeners[443]["Protocol"] == "HTTPS", "HTTP and HTTPS listeners")
        redirect = listeners[80]["DefaultActions"][0]
        check(redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS",
              "HTTP redirects to HTTPS")
        check(listeners[443].get("SslPolicy", "").startswith("ELBSecurityPolicy-TLS13"), "TLS 1.3 policy")
        routed = listeners[443]
    else:
        check(sorted(listeners) == [80] and listeners[80]["Protocol"] == "HTTP", "one HTTP listener (no certificate)")
        routed = listeners[80]
    check(routed["DefaultActions"][0]["Type"] == "forward", f"port {routed['Port']} forwards to the service")
    rules = elb.describe_rules(ListenerArn=routed["ListenerArn"])["Rules"]
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
    check(rds["MultiAZ"] is expect["multi_az"], f"database Multi-AZ is {expect['multi_az']} (inventory)")

    days = expect["log_days"]
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=svc_out["LogGroupName"])["logGroups"]
    check(bool(groups) and groups[0].get("retentionInDays") == days, f"log group keeps {days} days (inventory)")

    if expect["copy_region"]:
        vaults = boto3.client("backup", region_name=expect["copy_region"]).list_backup_vaults()["BackupVaultList"]
        check(any(v["BackupVaultName"] == f"birthday-api-{args.env}-dr" for v in vaults),
              f"DR backup vault exists in {expect['copy_region']}")

    body = aws.client("cloudwatch").get_dashboard(DashboardName=outputs["monitoring"]["DashboardName"])["DashboardBody"]
    try:
        widgets = json.loads(body)["widgets"]
        check(len(widgets) >= 6, f"dashboard body is JSON with {len(widgets)} widgets")
    except ValueError as e:
        check(False, f"dashboard body is JSON ({e})")

    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print(image)


def prepare(aws: boto3.session.Session) -> None:
    """moto checks that a listener's certificate and a record's zone exist."""
    cert = aws.client("acm").request_certificate(DomainName="birthday-api.example.com")["CertificateArn"]
    zone = aws.client("route53").create_hosted_zone(Name="example.com.", CallerReference="deploy-test")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    print(json.dumps({"service_certificate_arn": cert, "service_hosted_zone_id": zone_id}))


if __name__ == "__main__":
    main()
