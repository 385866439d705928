"""Stand-ins for network services used by the tests (ccxt exchanges)."""
