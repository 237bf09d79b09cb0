"""Whole-account escalation analysis with principalmapper 1.1.5 (not keyward's code):
its graph of who can reach whom, its admin detection and its findings, over the
emulated account. Prints one JSON document.

Usage: python escalation.py http://127.0.0.1:PORT   (moto's endpoint)

principalmapper needs help to run here, applied at run time (site-packages untouched):
  1. Python >= 3.10 moved Mapping/MutableMapping to collections.abc.
  2. moto's GetAccountAuthorizationDetails omits Policies[].PolicyName.
And, so that it can see what keyward's documents say instead of silently dropping
edges (which would under-report reach):
  3. trust policies are tried again with MFA, and such edges are labelled as needing it;
     a user is taken to set its own name as SourceIdentity, in the trust and in its own
     policies, which is what keyward's machine policy requires of it (principalmapper
     does not model SourceIdentity);
  4. policy variables in Condition values (${aws:PrincipalTag/...}) are substituted
     from the request context, as AWS does (a missing one matches no string);
  5. IAM edge checks get the destination's tags as iam:ResourceTag/* and aws:ResourceTag/*.
"""
import collections
import collections.abc
import json
import re
import sys

for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import botocore.session  # noqa: E402
from principalmapper.analysis import find_risks  # noqa: E402
from principalmapper.common import Node  # noqa: E402
from principalmapper.graphing import gathering, iam_edges, sts_edges  # noqa: E402
from principalmapper.querying import local_policy_simulation as lps  # noqa: E402
from principalmapper.querying import query_interface  # noqa: E402
from principalmapper.querying.local_policy_simulation import ResourcePolicyEvalResult  # noqa: E402
from principalmapper.querying.presets.privesc import can_privesc  # noqa: E402

UNRESOLVED = "keyward-analysis-unresolved-policy-variable"
VARIABLE = re.compile(r"\$\{([^}]+)\}")
MFA_PAIRS = set()
NODES = {}


def fill_policy_names(parsed, **_):
    for p in parsed.get("Policies", []):
        p.setdefault("PolicyName", p["Arn"].rsplit("/", 1)[-1])


def substitute(value, context):
    def one(m):
        key = m.group(1).strip()
        if key in ("*", "?", "$"):
            return key
        found = [v for k, v in context.items() if k.lower() == key.lower()]
        return str(found[0]) if found else UNRESOLVED

    if isinstance(value, str):
        return VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [substitute(v, context) for v in value]
    return value


def patch_condition_variables():
    original = lps._get_condition_match

    def with_variables(condition, context):
        filled = {}
        for block, keys in condition.items():
            base = block.split(":")[-1]
            takes = base.startswith("String") or base.startswith("Arn")
            filled[block] = {k: substitute(v, context) if takes else v for k, v in keys.items()}
        return original(filled, context)

    lps._get_condition_match = with_variables


def patch_resource_tags():
    original_edges = iam_edges.generate_edges_locally
    original_check = query_interface.local_check_authorization_handling_mfa

    def remember(nodes, *args, **kwargs):
        NODES.update({n.arn: n for n in nodes})
        return original_edges(nodes, *args, **kwargs)

    def with_tags(principal, action, resource, keys, *args, **kwargs):
        if action == "sts:AssumeRole" and ":user/" in principal.arn:
            keys = dict(keys)
            keys.setdefault("sts:SourceIdentity", principal.arn.rsplit("/", 1)[-1])
        target = NODES.get(resource)
        if target is not None and target.tags:
            keys = dict(keys)
            for k, v in target.tags.items():
                keys.setdefault(f"iam:ResourceTag/{k}", v)
                keys.setdefault(f"aws:ResourceTag/{k}", v)
        return original_check(principal, action, resource, keys, *args, **kwargs)

    iam_edges.generate_edges_locally = remember
    query_interface.local_check_authorization_handling_mfa = with_tags


def patch_mfa_trust():
    original = sts_edges.resource_policy_authorization

    def with_mfa(node, owner, policy, action, resource, ctx):
        base = dict(ctx)
        if isinstance(node, Node):
            base.update(dict(query_interface._infer_condition_keys(node, query_interface._prepare_condition_context(base))))
            if ":user/" in node.arn:
                base.setdefault("sts:SourceIdentity", node.arn.rsplit("/", 1)[-1])
        result = original(node, owner, policy, action, resource, base)
        if result is ResourcePolicyEvalResult.NO_MATCH and isinstance(node, Node) and ":user/" in node.arn:
            mfa = dict(base, **{"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "1"})
            again = original(node, owner, policy, action, resource, mfa)
            if again is not ResourcePolicyEvalResult.NO_MATCH:
                MFA_PAIRS.add((node.arn, resource))
                return again
        return result

    sts_edges.resource_policy_authorization = with_mfa

    original_denies = sts_edges.has_matching_statement

    def denies_with_own_name(node, effect, action, resource, ctx, *args, **kwargs):
        if isinstance(node, Node) and ":user/" in node.arn:
            ctx = dict(ctx)
            ctx.update(dict(query_interface._infer_condition_keys(node, query_interface._prepare_condition_context(ctx))))
            ctx.setdefault("sts:SourceIdentity", node.arn.rsplit("/", 1)[-1])
        return original_denies(node, effect, action, resource, ctx, *args, **kwargs)

    sts_edges.has_matching_statement = denies_with_own_name


def graph(endpoint):
    s = botocore.session.Session()
    s.set_credentials("analysis", "analysis")
    s.set_config_variable("region", "us-east-1")
    s.register("after-call.iam.GetAccountAuthorizationDetails", fill_policy_names)
    clients = {svc: {"endpoint_url": endpoint} for svc in ["iam", "sts", "s3", "kms", "sns", "sqs", "secretsmanager"]}
    g = gathering.create_graph(s, ["iam", "sts"], region_allow_list=["us-east-1"], client_args_map=clients)
    for e in g.edges:
        if (e.source.arn, e.destination.arn) in MFA_PAIRS and "MFA" not in e.reason:
            e.reason = "(requires MFA) " + e.reason
    return g


def report(g):
    def edge(e):
        return {"from": e.source.arn, "to": e.destination.arn, "reason": e.reason, "mfa_required": "MFA" in e.reason}

    privesc = {}
    for n in g.nodes:
        if not n.is_admin:
            ok, path = can_privesc(g, n)
            if ok:
                privesc[n.arn] = [edge(e) for e in path]
    return {
        "principals": sorted(n.arn for n in g.nodes),
        "admins": sorted(n.arn for n in g.nodes if n.is_admin),
        "edges": [edge(e) for e in g.edges],
        "privesc": privesc,
        "findings": [{"title": f.title, "severity": f.severity} for f in find_risks.gen_all_findings(g)],
    }


def main():
    patch_condition_variables()
    patch_resource_tags()
    patch_mfa_trust()
    print(json.dumps(report(graph(sys.argv[1])), indent=1))


if __name__ == "__main__":
    main()
