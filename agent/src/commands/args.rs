//! The subcommands' arguments. The folder is `--dir` (or `SYNC_DIR`, or
//! `dir` in the config file); commands that ask the hub take its URL from
//! `--hub`, else from the folder's state (the hub its agent last used),
//! else from the config file, and the token as the agent does.

use std::path::PathBuf;

use clap::{ArgMatches, Subcommand};

use crate::config::{EnvToken, Settings, given};
use crate::config_file::{ConfigFileError, FileConfig};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what is synced, pending, in conflict, and the last error, from
    /// local state alone (the hub is not contacted).
    Status {
        #[command(flatten)]
        at: FolderArgs,
    },
    /// List the versions the hub keeps of a file: when, by whom, size, and
    /// which is current.
    History {
        #[command(flatten)]
        at: HubArgs,
        /// The file: relative to the synced folder, or an absolute path in it.
        path: PathBuf,
        /// Print JSON (see the README for its fields).
        #[arg(long)]
        json: bool,
    },
    /// Make an older version of a file current again, as a new version on
    /// the hub; the running agent (or its next run) brings it into the
    /// folder like any change. Without --version: the newest earlier
    /// version with other content, or, for a deleted file, the last
    /// version that had content.
    Restore {
        #[command(flatten)]
        at: HubArgs,
        /// The file: relative to the synced folder, or an absolute path in it.
        path: PathBuf,
        /// The version to restore (see `sf-agent history`).
        #[arg(long, value_name = "N")]
        version: Option<u64>,
        /// Print JSON (see the README for its fields).
        #[arg(long)]
        json: bool,
    },
    /// List the conflict copies in the folder next to the files they
    /// conflict with, or resolve one with --keep.
    Conflicts {
        #[command(flatten)]
        at: FolderArgs,
        /// Resolve the conflict of PATH (a conflict copy, or a file with one
        /// copy): `remote` keeps the file and moves the copy to the agent's
        /// trash; `local` puts the copy's content in the file's place and
        /// moves the file's old content to the trash. The running agent
        /// syncs the result; the hub keeps every old version.
        #[arg(long, value_enum, requires = "path")]
        keep: Option<Keep>,
        /// With --keep, the conflict to resolve; without, list only this
        /// file's copies.
        path: Option<PathBuf>,
        /// Print JSON (see the README for its fields).
        #[arg(long)]
        json: bool,
    },
    /// List what the agent moved to its trash (.sf/trash: files deleted on
    /// the hub, resolved conflicts), or put one back with --restore.
    Trash {
        #[command(flatten)]
        at: FolderArgs,
        /// Put this back into the folder: a path as it was in the folder
        /// (its newest trashed copy), or a path inside .sf/trash. Nothing
        /// existing is overwritten.
        #[arg(long, value_name = "PATH")]
        restore: Option<PathBuf>,
        /// With --restore: put it here instead of where it was.
        #[arg(long, value_name = "PATH", requires = "restore")]
        to: Option<PathBuf>,
        /// Print JSON (see the README for its fields).
        #[arg(long)]
        json: bool,
    },
    /// Write and start a systemd user service that runs the agent at login
    /// with these settings (or the config file's).
    InstallService {
        #[command(flatten)]
        settings: Settings,
        /// Print the unit and change nothing.
        #[arg(long)]
        print: bool,
    },
}

/// Which side of a conflict `sf-agent conflicts --keep` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Keep {
    /// The conflict copy's content (the version this agent had) replaces the file.
    Local,
    /// The file stays as the hub has it; the copy goes.
    Remote,
}

/// The folder of a command that reads it.
#[derive(Debug, Clone, clap::Args)]
pub struct FolderArgs {
    /// The agent's config file (see `sf-agent --help`); its `dir` is the
    /// folder when --dir is not given.
    #[arg(long, env = "SF_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The synced folder.
    #[arg(long, env = "SYNC_DIR")]
    pub dir: Option<PathBuf>,
}

impl FolderArgs {
    pub(crate) fn merge_file(&mut self, matches: &ArgMatches) -> Result<(), ConfigFileError> {
        let file = FileConfig::load(self.config.as_deref())?;
        if !given(matches, "dir") && file.dir.is_some() {
            self.dir = file.dir;
        }
        Ok(())
    }
}

/// The folder and the hub of a command that asks the hub.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// The agent's config file (see `sf-agent --help`).
    #[arg(long, env = "SF_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The synced folder.
    #[arg(long, env = "SYNC_DIR")]
    pub dir: Option<PathBuf>,
    /// The hub's URL. Default: the hub the folder's agent last synced
    /// through, else the config file's.
    #[arg(
        long,
        env = "SERVER_URL",
        value_name = "URL",
        value_delimiter = ',',
        value_parser = crate::hub_client::normalize_hub_url
    )]
    pub hub: Vec<String>,
    /// The config file's hubs, used when neither --hub nor the folder's
    /// state names one.
    #[arg(skip)]
    pub file_hub: Vec<String>,
    /// A file holding the hub's access token (or set SF_TOKEN), as for the
    /// agent.
    #[arg(long, env = "SF_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    #[arg(skip = EnvToken::read())]
    pub token_env: EnvToken,
    /// A PEM file of CA certificates to trust for an https:// hub.
    #[arg(long, env = "SF_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The name recorded as the origin of a restore. Default: the host name.
    #[arg(long, env = "SF_AGENT_NAME")]
    pub name: Option<String>,
}

impl HubArgs {
    pub(crate) fn merge_file(&mut self, matches: &ArgMatches) -> Result<(), ConfigFileError> {
        let file = FileConfig::load(self.config.as_deref())?;
        if !given(matches, "dir") && file.dir.is_some() {
            self.dir = file.dir;
        }
        self.file_hub = file.hub.unwrap_or_default();
        if !given(matches, "token_file") && file.token_file.is_some() {
            self.token_file = file.token_file;
        }
        if !given(matches, "ca_cert") && file.ca_cert.is_some() {
            self.ca_cert = file.ca_cert;
        }
        if !given(matches, "name") && file.name.is_some() {
            self.name = file.name;
        }
        Ok(())
    }
}
