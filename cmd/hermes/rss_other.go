//go:build !linux

package main

func peakRSSMB() int64 { return -1 }
