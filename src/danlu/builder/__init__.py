"""The builder: apps as graphs — DSL, compiler, runtime, node types."""
