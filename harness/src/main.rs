//! The `ocs-harness` command line: build the offline images, run a scenario, clean up.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ocs_harness::plan::LABEL_CREATED;
use ocs_harness::recipes::{ImageSet, LABEL_MANAGED};
use ocs_harness::runtime::images::{cache_dir, ensure_base_images};
use ocs_harness::runtime::stack::docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

#[derive(Parser)]
#[command(
    name = "ocs-harness",
    version,
    about = "Integration tests for dockerized OCS agent stacks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the local ocs and crossbar base images if they are missing, and print their tags.
    Images,
    /// Remove every container and network the harness created (by label), and say what.
    Clean,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Images => images().await,
        Command::Clean => clean().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn images() -> anyhow::Result<()> {
    let docker = docker().await?;
    let set = ImageSet::default();
    let base = ensure_base_images(&docker, &set, &|line| eprintln!("ocs-harness: {line}")).await?;
    for (image, took) in &base.built {
        println!("built   {image} in {:.1}s", took.as_secs_f64());
    }
    println!("ocs      {}", base.ocs);
    println!("crossbar {}", base.crossbar);
    println!(
        "(cache: {}; {:.2}s on images)",
        cache_dir().display(),
        base.elapsed.as_secs_f64()
    );
    for (from, to) in set.overrides().entries() {
        println!("override {from} -> {to}");
    }
    Ok(())
}

async fn clean() -> anyhow::Result<()> {
    let docker = docker().await?;
    let filter = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await?;
    let mut removed = 0;
    for c in containers {
        let Some(id) = c.id else { continue };
        let name = c
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or_else(|| id.clone());
        let created = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CREATED).cloned())
            .unwrap_or_default();
        docker
            .remove_container(
                &id,
                Some(
                    RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await?;
        println!(
            "removed container {} (created {created})",
            name.trim_start_matches('/')
        );
        removed += 1;
    }
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filter).build(),
        ))
        .await?;
    for n in networks {
        let Some(name) = n.name else { continue };
        docker.remove_network(&name).await?;
        println!("removed network {name}");
        removed += 1;
    }
    if removed == 0 {
        println!("nothing to clean: no container or network carries {LABEL_MANAGED}=true");
    }
    Ok(())
}
