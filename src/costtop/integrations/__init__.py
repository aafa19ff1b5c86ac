"""Gateway-side code a gateway loads to obey costtop's switches (the UI is never imported from here)."""
