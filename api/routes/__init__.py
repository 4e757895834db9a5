"""The API's routes, one module per resource: jobs, ipfs (and the gateway), health, the
explorer's JSON and its pages."""
