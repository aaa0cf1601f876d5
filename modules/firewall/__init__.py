"""Firewall: mGuard configuration profiles read into typed rulesets, reviewed against a
site policy, compared before and after a change, and the evidence behind compensating
controls (issue 13)."""

# name -> where its class is; imported when a playbook first uses it
MODULES: dict[str, str] = {
    "firewall.review": "otpatch.modules.firewall.review_module:FirewallReview",
}
CLI = ["otpatch.modules.firewall.cli:register"]  # `otpatch firewall review|diff`
SCHEMAS = ["firewall-policy.schema.json"]
