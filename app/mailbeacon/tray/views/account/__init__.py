"""The rep's mail account, as the rep sees it: the set-up flow over ``agent.account``."""
