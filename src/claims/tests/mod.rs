mod fixtures;
mod roundtrip;
mod strategies;
