//! The pod a CRI log file belongs to, from the names the kubelet gives its files.

use std::path::Path;

use crate::record::PodRef;

/// `/var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log` or
/// `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<N>.log` (also rotated `<N>.log.<time>`).
/// Only the last path components are read, so a hostPath mounted elsewhere works too.
pub fn pod_from_path(path: &Path) -> Option<PodRef> {
    let name = path.file_name()?.to_str()?;
    if let Some(pod) = containers_name(name) {
        return Some(pod);
    }
    pods_path(path, name)
}

fn containers_name(name: &str) -> Option<PodRef> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Pod names and namespaces have no `_` (DNS labels); container names neither.
    let mut parts = rest.split('_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [pod, namespace, container].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(PodRef {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: container.to_owned(),
        container_id: Some(id.to_owned()),
    })
}

fn pods_path(path: &Path, name: &str) -> Option<PodRef> {
    // `<N>.log` or `<N>.log.<timestamp>`
    let (n, _) = name.split_once(".log")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let container_dir = path.parent()?;
    let container = container_dir.file_name()?.to_str()?;
    let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
    let mut parts = pod_dir.split('_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [namespace, pod, uid, container].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(PodRef {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: container.to_owned(),
        container_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn containers_symlink_name() {
        let p = format!("/var/log/containers/calypso-ds-0_trading_dataserver-{ID}.log");
        let pod = pod_from_path(Path::new(&p)).expect("pod");
        assert_eq!(pod.namespace, "trading");
        assert_eq!(pod.pod, "calypso-ds-0");
        assert_eq!(pod.container, "dataserver");
        assert_eq!(pod.container_id.as_deref(), Some(ID));
        // A container name with dashes: the id is what follows the last one.
        let p = format!("/var/log/containers/p_ns_log-ship-{ID}.log");
        assert_eq!(pod_from_path(Path::new(&p)).expect("pod").container, "log-ship");
    }

    #[test]
    fn pods_directory_and_rotations() {
        for name in ["0.log", "3.log", "0.log.20261127-135332", "0.log.20261127-135332.gz"] {
            let p = format!("/var/log/pods/trading_calypso-ds-0_5f0c-uid/dataserver/{name}");
            let pod = pod_from_path(Path::new(&p)).expect(name);
            assert_eq!(
                (pod.namespace.as_str(), pod.pod.as_str(), pod.container.as_str()),
                ("trading", "calypso-ds-0", "dataserver")
            );
            assert_eq!(pod.container_id, None);
        }
    }

    #[test]
    fn other_paths_are_not_pods() {
        for p in [
            "/var/log/calypso/dataserver.log",
            "/var/log/containers/x_y_z-1234.log",
            "/var/log/pods/trading_pod/c/0.log",
            "/var/log/pods/a_b_c/c/x.log",
            "0.log",
        ] {
            assert_eq!(pod_from_path(Path::new(p)), None, "{p}");
        }
    }
}
