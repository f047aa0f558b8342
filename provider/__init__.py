"""Clients of the outside services Loket calls (the PPOB provider; later the payment gateway)."""
