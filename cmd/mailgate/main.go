// Command mailgate is a drop-in replacement for the nginx mail proxy.
package main

func main() {}
