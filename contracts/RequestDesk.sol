// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IRequestDesk} from "./interfaces/IRequestDesk.sol";

/// @title hepx request desk: jobs posted from requests their requesters signed
/// @notice See {IRequestDesk} and docs/protocol.md ("Signed requests").
/// @dev The market deploys the desk and trusts it to name a job's requester: the desk appends
/// the signer's address to the market call (ERC-2771's convention), and only a call from the
/// desk is read that way. The escrow travels as the call's value, so the market's own escrow
/// checks and books are the same as for a job posted directly.
contract RequestDesk is IRequestDesk, EIP712 {
    bytes32 private constant _TERMS_TYPEHASH = keccak256(
        "Terms(uint8 mode,uint8 replicas,uint8 quorum,address token,uint256 maxPrice,"
        "uint256 minStake,uint256 matchWindow,uint256 runWindow,uint256 revealWindow,"
        "bytes32 kind,bytes32 allowlistRoot)"
    );
    bytes32 private constant _REQUEST_TYPEHASH = keccak256(
        "JobRequest(address requester,string specCid,Terms terms,uint256 nonce,uint256 expiry)"
        "Terms(uint8 mode,uint8 replicas,uint8 quorum,address token,uint256 maxPrice,"
        "uint256 minStake,uint256 matchWindow,uint256 runWindow,uint256 revealWindow,"
        "bytes32 kind,bytes32 allowlistRoot)"
    );

    /// @inheritdoc IRequestDesk
    address public immutable market;

    mapping(address requester => uint256) private _deposits;
    mapping(address requester => mapping(uint256 nonce => bool)) private _usedNonces;

    constructor() EIP712("hepx RequestDesk", "1") {
        market = msg.sender;
    }

    /// @inheritdoc IRequestDesk
    function deposit() external payable {
        if (msg.value == 0) revert DeskInvalidAmount(0);
        uint256 balance = _deposits[msg.sender] + msg.value;
        _deposits[msg.sender] = balance;
        emit Deposited(msg.sender, msg.value, balance);
    }

    /// @inheritdoc IRequestDesk
    function withdrawDeposit(uint256 amount) external {
        uint256 balance = _deposits[msg.sender];
        if (amount == 0) revert DeskInvalidAmount(0);
        if (amount > balance) revert DeskInsufficientDeposit(msg.sender, balance, amount);
        _deposits[msg.sender] = balance - amount;
        emit DepositWithdrawn(msg.sender, amount, balance - amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert DeskTransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IRequestDesk
    function cancelNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit NonceCancelled(msg.sender, nonce);
    }

    /// @inheritdoc IRequestDesk
    function relay(JobRequest calldata request, bytes calldata signature)
        external
        returns (uint256 jobId)
    {
        if (block.timestamp > request.expiry) {
            revert DeskRequestExpired(request.expiry, block.timestamp);
        }
        address requester = request.requester;
        (address signer, ECDSA.RecoverError failure,) =
            ECDSA.tryRecoverCalldata(requestDigest(request), signature);
        if (failure != ECDSA.RecoverError.NoError || signer != requester) {
            revert DeskBadSignature();
        }
        IJobMarket.Terms calldata terms = request.terms;
        if (terms.token != address(0)) revert DeskTokenJob(terms.token);
        _useNonce(requester, request.nonce);
        uint256 escrow = terms.maxPrice * terms.replicas;
        uint256 balance = _deposits[requester];
        if (escrow > balance) revert DeskInsufficientDeposit(requester, balance, escrow);
        _deposits[requester] = balance - escrow;

        bytes memory call = _fastPath(terms)
            ? abi.encodeCall(
                IJobMarket.postJob, (request.specCid, terms.matchWindow, terms.runWindow)
            )
            : abi.encodeCall(IJobMarket.postJobWithTerms, (request.specCid, terms));
        (bool ok, bytes memory answer) =
            market.call{value: escrow}(abi.encodePacked(call, requester));
        if (!ok) {
            // The market's own refusal (window, replicas, price...), as it gave it.
            assembly ("memory-safe") {
                revert(add(answer, 32), mload(answer))
            }
        }
        jobId = abi.decode(answer, (uint256));
        emit RequestRelayed(jobId, requester, request.nonce, msg.sender);
    }

    /// @inheritdoc IRequestDesk
    function requestDigest(JobRequest calldata request) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _REQUEST_TYPEHASH,
                    request.requester,
                    keccak256(bytes(request.specCid)),
                    keccak256(abi.encode(_TERMS_TYPEHASH, request.terms)),
                    request.nonce,
                    request.expiry
                )
            )
        );
    }

    /// @inheritdoc IRequestDesk
    function depositOf(address requester) external view returns (uint256) {
        return _deposits[requester];
    }

    /// @inheritdoc IRequestDesk
    function nonceUsed(address requester, uint256 nonce) external view returns (bool) {
        return _usedNonces[requester][nonce];
    }

    function _useNonce(address requester, uint256 nonce) private {
        if (_usedNonces[requester][nonce]) revert DeskNonceUsed(requester, nonce);
        _usedNonces[requester][nonce] = true;
    }

    /// @dev Terms `postJob` carries (claim, one replica, ETH, no stake, kind or allowlist):
    /// such a job is posted through the market's cheaper fast path.
    function _fastPath(IJobMarket.Terms calldata t) private pure returns (bool) {
        return t.mode == IJobMarket.MatchMode.Claim && t.replicas == 1 && t.quorum == 1
            && t.minStake == 0 && t.revealWindow == 0 && t.kind == bytes32(0)
            && t.allowlistRoot == bytes32(0);
    }
}
