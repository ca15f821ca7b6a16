//! `cfy status`: the manager's services (Cloudify's command and output).

use shared::api::ServerStatus;

use super::{print, print_json};
use crate::client::{CliError, Client};
use crate::output;

/// Runs `cfy status`.
pub async fn run(client: &Client, json: bool) -> Result<(), CliError> {
    if !json {
        println!("{}", output::retrieving(&client.host()));
    }
    let status: ServerStatus = client.get("/status").await?;
    if json {
        return print_json(&status);
    }
    print(output::status_table(&status));
    Ok(())
}
