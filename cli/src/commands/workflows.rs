//! `cfy workflows list`: the catalog.

use shared::api::{ListResponse, Workflow};

use super::{print, print_json};
use crate::args::Workflows;
use crate::client::{CliError, Client};
use crate::output;

/// Runs one `workflows` command.
pub async fn run(client: &Client, command: Workflows) -> Result<(), CliError> {
    match command {
        Workflows::List { json } => {
            let list: ListResponse<Workflow> = client.get("/workflows").await?;
            if json {
                return print_json(&list);
            }
            print(output::workflows_table(&list.items));
        }
    }
    Ok(())
}
