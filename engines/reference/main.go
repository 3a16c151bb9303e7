// Command reference is the pure-Go fp32 Llama engine: the CI engine and the
// numerical reference every other engine is compared with.
package main

func main() {}
