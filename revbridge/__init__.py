"""revbridge: the pure domain of the Salesforce → QuickBooks Online integration.

No Prefect, no network, no clock reads, no environment reads: every function takes what it needs
(``today``, ``now``, the config, the records) and returns plain data. The Prefect tasks and flows
sit on top of this package.

The closed-won → invoice spine, module by module::

    soql.closed_won_query → models.Opportunity.from_record → plan.plan_run (routing + validate)
      → matching.match_accounts (match_customer per account) → invoices.build_invoice
      → batch.batch_request / parse_batch_response → writeback.opportunity_updates
      → watermark.advance → report.markdown_table / slack_summary
"""
