"""Print an ECR authorization token as JSON: {"token", "password", "endpoint"}.

`token` is what ECR's registry API takes as `Authorization: Basic <token>`;
`password` is for `docker login --username AWS --password-stdin`.
Usage: python ecr_token.py REGION
"""

import base64
import json
import sys

import boto3


def main() -> None:
    region = sys.argv[1]
    data = boto3.client("ecr", region_name=region).get_authorization_token()
    auth = data["authorizationData"][0]
    token = auth["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    if user != "AWS":
        sys.exit("unexpected ECR token user")
    json.dump(
        {"token": token, "password": password, "endpoint": auth["proxyEndpoint"]},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
