//! Relative paths in a config file are taken relative to the folder of that file, never to
//! the working directory: a gateway started by systemd, a container or a package finds the
//! same files as one started by hand from the checkout.

use std::path::{Path, PathBuf};

use super::{Config, PasswordSource, StoreBackend};
use crate::store::postgres::UrlSource;

/// Joins every relative path in `config` onto `base` (the config file's folder).
pub(super) fn anchor(config: &mut Config, base: &Path) {
    let fix = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = base.join(&*path);
        }
    };
    let fix_password = |source: &mut PasswordSource| {
        if let PasswordSource::File(path) = source {
            fix(path);
        }
    };
    if let Some(tls) = &mut config.tls {
        fix(&mut tls.cert);
        fix(&mut tls.key);
    }
    fix(&mut config.store.path);
    if let StoreBackend::Postgres(pg) = &mut config.store.backend {
        if let UrlSource::File(path) = &mut pg.url {
            fix(path);
        }
        if let Some(path) = &mut pg.ca_file {
            fix(path);
        }
    }
    if let Some(path) = &mut config.seal.dev_identity {
        fix(path);
    }
    fix(&mut config.admin.socket);
    if let Some(tcp) = &mut config.admin.tcp {
        fix(&mut tcp.cert);
        fix(&mut tcp.key);
        fix(&mut tcp.client_ca);
    }
    if let Some(path) = &mut config.notify.templates {
        fix(path);
    }
    if let Some(relay) = &mut config.notify.relay
        && let Some(source) = &mut relay.password
    {
        fix_password(source);
    }
    if let Some(release) = &mut config.release {
        if let Some(source) = &mut release.password {
            fix_password(source);
        }
        if let Some(path) = &mut release.ca {
            fix(path);
        }
    }
    if let Some(path) = &mut config.rdap.bootstrap {
        fix(path);
    }
}

/// The folder a config file's relative paths start from: the file's own folder, made
/// absolute so that it stays right whatever the working directory becomes later.
pub(super) fn base_of(config_file: &Path) -> PathBuf {
    // `reclaim.toml` has the parent "", which `absolute` refuses: that is the current folder.
    let folder = match config_file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_start_at_the_config_folder() {
        let text = format!(
            "{}\n[tls]\ncert = \"certs/c.pem\"\nkey = \"/abs/k.pem\"\n[notify]\ntemplates = \"notices\"\n",
            super::super::tests::MINIMAL
        );
        let mut config = Config::parse(&text).expect("valid");
        anchor(&mut config, Path::new("/etc/reclaim"));
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert, Path::new("/etc/reclaim/certs/c.pem"));
        assert_eq!(tls.key, Path::new("/abs/k.pem"), "absolute paths stay");
        assert_eq!(
            config.notify.templates.as_deref(),
            Some(Path::new("/etc/reclaim/notices"))
        );
        assert!(config.store.path.starts_with("/etc/reclaim"));
        assert!(config.admin.socket.starts_with("/etc/reclaim"));
    }

    #[test]
    fn the_base_is_the_file_folder_made_absolute() {
        assert_eq!(
            base_of(Path::new("/etc/reclaim/reclaim.toml")),
            Path::new("/etc/reclaim")
        );
        let relative = base_of(Path::new("config/reclaim.toml"));
        assert!(
            relative.is_absolute() && relative.ends_with("config"),
            "{relative:?}"
        );
        let bare = base_of(Path::new("reclaim.toml"));
        assert!(bare.is_absolute(), "{bare:?}");
    }
}
