"""OSS error constructors: the codes, statuses, messages and EC values the real service answers.

EC values come from OSS's error-centre pages (https://help.aliyun.com/en/oss/user-guide/<EC>) where one names the
condition; where none does, the EC is localcloud's choice and docs/emulated/oss.md says so.
"""

from __future__ import annotations

from localcloud.errors import ServiceError


def oss_error(status: int, code: str, message: str, ec: str = "", **extra: str) -> ServiceError:
    """A :class:`ServiceError` whose ``extra`` items become additional elements of the ``<Error>`` body."""
    return ServiceError(status, code, message, ec, dict(extra))


def no_such_bucket(bucket: str) -> ServiceError:
    return oss_error(404, "NoSuchBucket", "The specified bucket does not exist.", "0015-00000101", BucketName=bucket)


def bucket_not_yours(bucket: str) -> ServiceError:
    # A caller of another account, with no grant: https://help.aliyun.com/en/oss/user-guide/0003-00000202
    return oss_error(403, "AccessDenied", "The bucket you access does not belong to you.", "0003-00000202",
                     BucketName=bucket)


def denied_by_policy() -> ServiceError:
    # An explicit Deny in the bucket policy: https://help.aliyun.com/zh/oss/support/0003-00000101
    return oss_error(403, "AccessDenied", "Access denied by bucket policy.", "0003-00000101")


def malformed_xml() -> ServiceError:
    return oss_error(400, "MalformedXML",
                     "The XML you provided was not well-formed or did not validate against our published schema.",
                     "0016-00000608")


def invalid_argument(message: str, name: str = "", value: str = "", ec: str = "0016-00000601") -> ServiceError:
    extra = {}
    if name:
        extra = {"ArgumentName": name, "ArgumentValue": value}
    return oss_error(400, "InvalidArgument", message, ec, **extra)


def invalid_encryption_algorithm(algorithm: str) -> ServiceError:
    # An SSEAlgorithm other than AES256, KMS or SM4: https://www.alibabacloud.com/help/en/oss/user-guide/0005-00000003
    # (the EC); the Code is OSS's common InvalidEncryptionAlgorithmError (400), as oss2.exceptions models it.
    return oss_error(400, "InvalidEncryptionAlgorithmError",
                     f"The encryption request you specified is not valid. Supported values: AES256, KMS, SM4 "
                     f"(got {algorithm}).", "0005-00000003")


def need_verify_domain_ownership() -> ServiceError:
    # https://help.aliyun.com/document_detail/436755.html (code and message); 403 as the official SDKs' tests
    # expect (aliyun/alibabacloud-oss-python-sdk-v2 tests/integration/test_bucket_cname_client.py). The EC is
    # localcloud's choice: the page names none.
    return oss_error(403, "NeedVerifyDomainOwnership",
                     "Please verify domain ownership by CreateCnameToken and try again.", "0048-00000403")


def cname_token_not_found(bucket: str, domain: str) -> ServiceError:
    # GetCnameToken for a token never created or expired: https://help.aliyun.com/document_detail/428390.htm
    return oss_error(404, "CnameTokenNotFound", "Cname token not found.", "0018-00000301", Bucket=bucket,
                     Cname=domain)
