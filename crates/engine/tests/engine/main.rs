//! Integration tests on the real test models (see `common`). One test binary, so llama.cpp
//! is linked once; each test loads its own host when it counts decode calls or owns slots.

mod common;

mod batching;
mod budget;
mod embed;
mod errors;
mod generate;
mod grammar_depth;
mod infill;
mod load;
mod lora;
mod prompt_cache;
mod slots;
