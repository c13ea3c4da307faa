// Package mxfp4 implements the OCP MX FP4 format as gpt-oss stores it:
// blocks of 32 E2M1 values (two per byte, low nibble = even element) sharing
// one E8M0 scale byte.
package mxfp4
