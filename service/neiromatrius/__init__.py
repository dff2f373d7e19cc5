"""Neiromatrius: an AI front line for customer chats, built on Supabase."""

__version__ = "0.1.0"
