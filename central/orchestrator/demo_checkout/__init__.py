"""The demo payment provider's checkout page (plain HTML and JS, no build step): served by the
orchestrator at /pay/demo/{topup_id} only while `--payments demo` is configured."""
