// The production Kubo RPC client lives here (issue 3).
