//! The checks of `engine run`'s numbers, names and paths that no input
//! could make right, before anything is read.

use std::path::Path;

use anyhow::{bail, Result};

use super::args::{thread_cap, usage, RunArgs, MAX_RATE};
use super::values::{check_writable, file_id};

impl RunArgs {
    /// Numbers and names that no input could make right.
    pub(super) fn check_values(&self) -> Result<()> {
        if let Some(threads) = self.threads {
            let cap = thread_cap();
            if threads > cap {
                let cores =
                    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
                bail!(usage(format!(
                    "--threads {threads} is above the cap of {cap} (4 per core on {cores} cores, \
                     at least 64, at most 1024); --threads 0 uses all cores"
                )));
            }
        }
        match self.records {
            Some(_) if self.source.generate.is_none() => {
                bail!(usage("--records goes with --generate"));
            }
            Some(0) => bail!(usage("--records must be at least 1")),
            _ => {}
        }
        if self.print_rows == Some(0) {
            bail!(usage("--print-rows must be at least 1"));
        }
        if self.top == Some(0) {
            bail!(usage("--top must be at least 1"));
        }
        if let Some(rate) = self.rate {
            if rate > MAX_RATE {
                bail!(usage(format!(
                    "--rate {rate} is above the cap of {MAX_RATE} records per second \
                     (one record a nanosecond)"
                )));
            }
        }
        for (flag, value) in [
            ("--key-col", &self.key_col),
            ("--value-col", &self.value_col),
            ("--time-col", &self.time_col),
            ("--generate", &self.source.generate),
            ("--connect", &self.source.connect),
            ("--listen", &self.source.listen),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                bail!(usage(format!("{flag} must not be empty")));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        let list = self.agg.as_deref().unwrap_or("count");
        for agg in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if seen.contains(&agg) {
                bail!(usage(format!("--agg {list}: `{agg}` is given twice")));
            }
            seen.push(agg);
        }
        Ok(())
    }

    /// Files: inputs that are directories, outputs that cannot be written,
    /// an output that is one of the inputs.
    pub(super) fn check_paths(&self) -> Result<()> {
        let mut inputs: Vec<(&str, &Path)> = Vec::new();
        match self.source.input.as_deref() {
            // Standard input redirected from a file (`< data.csv`): that file
            // must not be an output either.
            Some(path) if path.as_os_str() == "-" => {
                inputs.push(("--input - (standard input)", Path::new("/dev/stdin")));
            }
            Some(path) => inputs.push(("--input", path)),
            None => {}
        }
        if let Some(path) = self.lookup.as_deref() {
            inputs.push(("--lookup", path));
        }
        for (flag, path) in &inputs {
            if path.is_dir() && !flag.starts_with("--input -") {
                bail!(usage(format!("{flag} {} is a directory", path.display())));
            }
        }
        let mut outputs: Vec<(&str, &Path)> = Vec::new();
        if let Some(path) = self.output_file.as_deref() {
            check_writable(path, "--output-file", true)?;
            outputs.push(("--output-file", path));
        }
        if let Some(path) = self.stats_json.as_deref().filter(|p| p.as_os_str() != "-") {
            check_writable(path, "--stats-json", false)?;
            outputs.push(("--stats-json", path));
        }
        for (i, (flag, path)) in outputs.iter().enumerate() {
            let id = file_id(path);
            for (other, other_path) in inputs.iter().chain(&outputs[..i]) {
                if id.is_some() && id == file_id(other_path) {
                    bail!(usage(format!(
                        "{flag} {} is the same file as {other} {}",
                        path.display(),
                        other_path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}
