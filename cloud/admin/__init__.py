"""Administration that is not master data: gateways (register, rotate, disable), audited."""
