"""`ape run ape_deploy --network <devnet RPC URL>`: deploy JobMarket and TestToken with Ape.

Uses the first of Ape's test accounts (the same dev mnemonic anvil uses), so it is for the
devnet only.
"""

from ape import accounts, project

CHALLENGE_WINDOW = 60
STAKE_FREE_LIMIT = 10**16  # a devnet: jobs up to 0.01 ether taken without a stake


def main() -> None:
    deployer = accounts.test_accounts[0]
    calls = deployer.deploy(project.MarketCalls, CHALLENGE_WINDOW, STAKE_FREE_LIMIT)
    market = deployer.deploy(project.JobMarket, CHALLENGE_WINDOW, STAKE_FREE_LIMIT, calls.address)
    token = deployer.deploy(project.TestToken)
    print(f"JobMarket {market.address}")
    print(f"TestToken {token.address}")
