// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "./IJobMarket.sol";

/// @title hepx request desk: jobs posted from requests their requesters signed
/// @notice A requester deposits ETH here once and then signs job requests (EIP-712 typed data:
/// the spec's CID, the terms, a nonce and an expiry) with a wallet; anyone may relay a request
/// (the API does), and the desk posts the job on the market in the requester's name, paying the
/// escrow (max price x replicas) from the requester's deposit. The signature covers every field
/// and the domain (chain id, this desk), so a relayer can neither change a field nor spend more
/// than was signed, and a request is used once: a nonce used or cancelled, another chain or
/// another market, or a request past its expiry is refused. Refunds and payments of the job go
/// to the requester's market credit, as for a job it posted itself.
/// @dev Deployed by the JobMarket's constructor; the market trusts it to name a job's requester
/// (appended to the call, as in ERC-2771). ETH terms only: a token job is posted directly.
interface IRequestDesk {
    /// @notice The typed data a requester signs (primary type `JobRequest`).
    struct JobRequest {
        address requester; // who signs and pays; a signature by anyone else is refused
        string specCid;
        IJobMarket.Terms terms;
        uint256 nonce; // any unused number; the desk marks it used
        uint256 expiry; // unix time after which the request may not be relayed
    }

    event Deposited(address indexed requester, uint256 amount, uint256 balance);
    event DepositWithdrawn(address indexed requester, uint256 amount, uint256 balance);
    /// @notice A signed request became job `jobId` (the market's JobPosted has the details).
    event RequestRelayed(
        uint256 indexed jobId, address indexed requester, uint256 nonce, address relayer
    );
    event NonceCancelled(address indexed requester, uint256 nonce);

    error DeskInvalidAmount(uint256 amount);
    error DeskInsufficientDeposit(address requester, uint256 balance, uint256 needed);
    error DeskBadSignature();
    error DeskNonceUsed(address requester, uint256 nonce);
    error DeskRequestExpired(uint256 expiry, uint256 nowTime);
    error DeskTokenJob(address token);
    error DeskTransferFailed(address to, uint256 amount);

    /// @notice Adds the ETH sent to the caller's deposit.
    function deposit() external payable;

    /// @notice Sends `amount` of the caller's deposit back to it.
    function withdrawDeposit(uint256 amount) external;

    /// @notice Makes `nonce` unusable, so a request signed with it can no longer be relayed.
    function cancelNonce(uint256 nonce) external;

    /// @notice Posts the job `request` describes for the address that signed it; returns its
    /// id. Refused (and nothing spent) if the signature is not the requester's over exactly
    /// these fields, the nonce was used, the request expired, the terms name a token or the
    /// deposit does not cover the escrow; the market's own checks apply after that.
    function relay(JobRequest calldata request, bytes calldata signature)
        external
        returns (uint256 jobId);

    /// @notice The EIP-712 digest a requester signs for `request`.
    function requestDigest(JobRequest calldata request) external view returns (bytes32);

    function depositOf(address requester) external view returns (uint256);

    function nonceUsed(address requester, uint256 nonce) external view returns (bool);

    /// @notice The market this desk posts to (its deployer).
    function market() external view returns (address);
}
