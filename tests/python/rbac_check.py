"""Checks the RBAC manifests under deploy/rbac/ (argv: the files): every object valid against
the newest Kubernetes schema kubernetes-validate ships (strict: no unknown fields), and the
Events shipper's rights exactly get, list and watch on core/v1 events, nothing more; the
binding names the ServiceAccount the file declares. Prints one line per check, then
"N passed, M failed"."""

import sys

import kubernetes_validate
import yaml

from checks import check, finish

SCHEMA = kubernetes_validate.latest_version()


for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {d["kind"]: d for d in docs}
    for d in docs:
        try:
            kubernetes_validate.validate(d, SCHEMA, strict=True)
            check(f"{path}: {d['kind']} {d['metadata']['name']} valid against {SCHEMA}", True)
        except kubernetes_validate.ValidationError as e:
            check(f"{path}: {d['kind']} valid against {SCHEMA}", False, str(e))
    role = kinds.get("Role") or kinds.get("ClusterRole")
    binding = kinds.get("RoleBinding") or kinds.get("ClusterRoleBinding")
    account = kinds.get("ServiceAccount")
    check(f"{path}: a ServiceAccount, a role and its binding", bool(role and binding and account))
    if not (role and binding and account):
        continue
    rules = role.get("rules", [])
    exact = rules == [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]
    check(f"{path}: {role['kind']} grants get, list, watch on events and nothing more", exact, str(rules))
    ref = binding["roleRef"]
    check(f"{path}: the binding refers to the role", ref["kind"] == role["kind"] and ref["name"] == role["metadata"]["name"], str(ref))
    subjects = binding.get("subjects", [])
    check(
        f"{path}: the binding's subject is the ServiceAccount",
        len(subjects) == 1 and subjects[0]["kind"] == "ServiceAccount" and subjects[0]["name"] == account["metadata"]["name"]
        and subjects[0].get("namespace") == account["metadata"].get("namespace"),
        str(subjects),
    )

finish()
