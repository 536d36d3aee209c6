//! Fuzzes the config loader: any UTF-8 text is either refused with an error naming what is
//! wrong or turned into a config whose limits respect the documented bounds. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reclaim::config::Config;

fuzz_target!(|text: &str| {
    match Config::parse(text) {
        Ok(config) => {
            let limits = &config.server.limits;
            assert!(!config.server.listen.is_empty());
            assert!(limits.max_message_size >= 1024);
            assert!((512..=65536).contains(&limits.max_line_length));
            assert!(limits.max_connections >= 1 && limits.max_connections_per_ip >= 1);
            assert!(limits.max_recipients >= 1);
            assert!(!limits.command_timeout.is_zero() && !limits.data_timeout.is_zero());
            let _ = config.require_recipients();
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
