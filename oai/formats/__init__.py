"""Metadata formats: safe parsing, recognition, normalisation and crosswalks (lxml + stdlib only)."""
