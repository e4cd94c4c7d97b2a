//! agent-logship's edge (being built: issue 8).

fn main() {}
