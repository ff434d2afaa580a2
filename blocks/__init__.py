"""Prefect blocks of revbridge: credentials and connections, each with ``get_client()``.

``prefect block register -m blocks`` registers every block class exported here (Prefect's CLI
registers the Block subclasses it finds among a module's attributes); saving a block registers
its type too.
"""

from blocks.quickbooks import (
    QuickBooksAuthError,
    QuickBooksConnection,
    QuickBooksReauthorizationRequired,
)
from blocks.salesforce import SalesforceCredentials
from blocks.sandbox import SandboxBlocks, blocks_from_info, save_all
from blocks.slack import SlackConnection

__all__ = [
    "QuickBooksAuthError",
    "QuickBooksConnection",
    "QuickBooksReauthorizationRequired",
    "SalesforceCredentials",
    "SandboxBlocks",
    "SlackConnection",
    "blocks_from_info",
    "save_all",
]
