"""CDN 2018-05-10 conformance: the six actions tlsguard calls answer the official response models, parameter limits
and error codes, through aliyunsdkcore CommonRequest over HTTP.

Models: alibabacloud-cdn20180510's response bodies (aliyun/alibabacloud-python-sdk
``cdn-20180510/alibabacloud_cdn20180510/models/_describe_user_domains_response_body.py``,
``_describe_domain_certificate_info_response_body.py``, ``_describe_cdn_domain_configs_response_body.py``,
``_batch_set_cdn_domain_config_response_body.py``). API references, each cited beside the test that follows it:
DescribeUserDomains https://help.aliyun.com/document_detail/91188.htm, DescribeDomainCertificateInfo
https://help.aliyun.com/document_detail/91182.html, DescribeCdnDomainConfigs
https://alibabacloud.com/help/zh/cdn/api-describecdndomainconfigs, BatchSetCdnDomainConfig
https://help.aliyun.com/document_detail/90915.htm, SetCdnDomainSSLCertificate
https://help.aliyun.com/document_detail/2297005.htm, DeleteSpecificConfig
https://help.aliyun.com/document_detail/102258.html, the CDN not-found error
https://www.alibabacloud.com/help/ja/cdn/api-startcdndomain.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException

from localcloud.cloud import LocalCloud

from .conftest import OTHER_KEY, CdnCall, make_client

SITE = "www.example.com"
OTHER_ACCOUNT = "1500000000000002"

#: DescribeUserDomainsResponseBodyDomainsPageData and its Sources.Source, field for field.
PAGE_DATA_FIELDS = {"CdnType", "Cname", "Coverage", "Description", "DomainId", "DomainName", "DomainStatus",
                    "GmtCreated", "GmtModified", "ResourceGroupId", "Sandbox", "Sources", "SslProtocol"}
SOURCE_FIELDS = {"Content", "Port", "Priority", "Type", "Weight"}
#: DescribeDomainCertificateInfoResponseBodyCertInfosCertInfo.
CERT_INFO_FIELDS = {"CertDomainName", "CertExpireTime", "CertId", "CertLife", "CertName", "CertOrg", "CertRegion",
                    "CertStartTime", "CertType", "CertUpdateTime", "DomainCnameStatus", "DomainName",
                    "ServerCertificate", "ServerCertificateStatus", "Status"}
#: DescribeCdnDomainConfigsResponseBodyDomainConfigsDomainConfig and its FunctionArgs.FunctionArg.
DOMAIN_CONFIG_FIELDS = {"ConfigId", "FunctionArgs", "FunctionName", "ParentId", "Status"}
#: DescribeDomainCertificateInfo's documented ``Status`` values (https://help.aliyun.com/document_detail/91182.html).
CERT_STATUSES = {"success", "checking", "cname_error", "top_domain_cname_error", "domain_invalid",
                 "unsupport_wildcard", "applying", "get_token_timeout", "check_token_timeout", "get_cert_timeout",
                 "failed"}
#: DescribeUserDomains' documented ``DomainStatus`` values (https://help.aliyun.com/document_detail/91188.htm).
DOMAIN_STATUSES = ("online", "offline", "configuring", "configure_failed", "checking", "check_failed", "stopping",
                   "deleting")
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def functions(*items: tuple[str, dict[str, str]]) -> str:
    return json.dumps([{"functionName": name, "functionArgs": [{"argName": k, "argValue": v} for k, v in args.items()]}
                       for name, args in items])


def error_of(cdn: CdnCall, action: str, **params: Any) -> ServerException:
    with pytest.raises(ServerException) as caught:
        cdn(action, **params)
    return caught.value


@pytest.fixture
def site(cloud: LocalCloud) -> str:
    cloud.seed({
        "certificates": [{"name": "site-cert", "kind": "valid", "domains": [SITE]}],
        "cdn_domains": [{"name": SITE, "certificate": "site-cert",
                         "sources": [{"content": "origin.example.com", "type": "domain", "port": 443}],
                         "configs": {"https_force": {"enable": "on"},
                                     "https_tls_version": {"tls10": "off", "tls11": "off", "tls12": "on",
                                                           "tls13": "on"}}}],
    })
    return SITE


# -- DescribeUserDomains (https://help.aliyun.com/document_detail/91188.htm) -------------------------------------
def test_user_domains_answer_exactly_the_model_fields_and_types(cdn: CdnCall, site: str) -> None:
    """PageNumber, PageSize, TotalCount are integers; each PageData entry has the model's fields, ``DomainId`` an
    integer; each source has Content, Port (integer), Priority, Type, Weight (strings) and nothing else."""
    answer = cdn("DescribeUserDomains")
    assert set(answer) == {"RequestId", "PageNumber", "PageSize", "TotalCount", "Domains"}
    assert all(type(answer[k]) is int for k in ("PageNumber", "PageSize", "TotalCount"))
    entry = answer["Domains"]["PageData"][0]
    assert set(entry) == PAGE_DATA_FIELDS
    assert type(entry["DomainId"]) is int and entry["DomainId"] > 0
    assert entry["SslProtocol"] == "on" and entry["DomainStatus"] in DOMAIN_STATUSES
    assert ISO_SECONDS.match(entry["GmtCreated"]) and ISO_SECONDS.match(entry["GmtModified"])
    source = entry["Sources"]["Source"][0]
    assert set(source) == SOURCE_FIELDS
    assert source["Port"] == 443 and isinstance(source["Priority"], str) and isinstance(source["Weight"], str)


def test_user_domains_paging_follows_the_documented_ranges(cloud: LocalCloud, cdn: CdnCall) -> None:
    """PageSize is 1-500 (default 20) and PageNumber 1-100000; outside them the call is refused with 400; a page past
    the last is empty and still reports the TotalCount."""
    cloud.seed({"cdn_domains": [{"name": f"p{i:02d}.example.com"} for i in range(25)]})
    default = cdn("DescribeUserDomains")
    assert (default["PageSize"], default["PageNumber"], default["TotalCount"]) == (20, 1, 25)
    assert len(default["Domains"]["PageData"]) == 20
    assert len(cdn("DescribeUserDomains", PageSize="500")["Domains"]["PageData"]) == 25
    past = cdn("DescribeUserDomains", PageSize="10", PageNumber="4")
    assert past["Domains"]["PageData"] == [] and past["TotalCount"] == 25
    for name, value in (("PageSize", "0"), ("PageSize", "501"), ("PageNumber", "0"), ("PageNumber", "100001")):
        error = error_of(cdn, "DescribeUserDomains", **{name: value})
        assert (error.http_status, error.error_code) == (400, f"Invalid{name}")


def test_user_domains_name_filter_is_full_match_by_default_and_takes_a_comma_list(cloud: LocalCloud,
                                                                                  cdn: CdnCall) -> None:
    """With DomainName and no DomainSearchType the match is exact (full_match); DomainName may list up to 50
    comma-separated names."""
    cloud.seed({"cdn_domains": [{"name": "a.example.com"}, {"name": "aa.example.com"}, {"name": "b.example.com"}]})
    exact = cdn("DescribeUserDomains", DomainName="a.example.com")["Domains"]["PageData"]
    assert [d["DomainName"] for d in exact] == ["a.example.com"]
    listed = cdn("DescribeUserDomains", DomainName="a.example.com,b.example.com")["Domains"]["PageData"]
    assert sorted(d["DomainName"] for d in listed) == ["a.example.com", "b.example.com"]
    fifty = ",".join([f"n{i}.example.com" for i in range(49)] + ["b.example.com"])
    assert cdn("DescribeUserDomains", DomainName=fifty)["TotalCount"] == 1
    too_many = ",".join(f"n{i}.example.com" for i in range(51))
    assert error_of(cdn, "DescribeUserDomains", DomainName=too_many).http_status == 400


def test_user_domains_status_filter_takes_every_documented_status(cloud: LocalCloud, cdn: CdnCall) -> None:
    """Every documented DomainStatus value is accepted as a filter and matches only domains in that status."""
    cloud.seed({"cdn_domains": [{"name": f"{status.replace('_', '-')}.example.com", "status": status}
                                for status in DOMAIN_STATUSES]})
    for status in DOMAIN_STATUSES:
        found = cdn("DescribeUserDomains", DomainStatus=status)["Domains"]["PageData"]
        assert [d["DomainStatus"] for d in found] == [status]


# -- DescribeDomainCertificateInfo (https://help.aliyun.com/document_detail/91182.html) ----------------------------
def test_certificate_info_answers_exactly_the_model_fields(cloud: LocalCloud, cdn: CdnCall, site: str) -> None:
    """One CertInfo with the model's fields, all strings (``CertId`` too), for a domain with a certificate and for
    one without (HTTPS off)."""
    cloud.seed({"cdn_domains": [{"name": "plain.example.com"}]})
    for name, https in ((site, "on"), ("plain.example.com", "off")):
        answer = cdn("DescribeDomainCertificateInfo", DomainName=name)
        assert set(answer) == {"RequestId", "CertInfos"}
        (info,) = answer["CertInfos"]["CertInfo"]
        assert set(info) == CERT_INFO_FIELDS
        assert all(isinstance(value, str) for value in info.values())
        assert info["DomainName"] == name and info["ServerCertificateStatus"] == https


def test_certificate_info_values_use_the_documented_formats(cloud: LocalCloud, cdn: CdnCall, site: str) -> None:
    """Times are ``2018-06-03T22:03:39Z``-style UTC, ``CertLife`` counts months or years, ``CertType`` is cas or
    upload, ``Status`` one of the documented certificate states and ``CertRegion`` the certificate's region."""
    info = cdn("DescribeDomainCertificateInfo", DomainName=site)["CertInfos"]["CertInfo"][0]
    for field in ("CertStartTime", "CertExpireTime", "CertUpdateTime"):
        assert ISO_SECONDS.match(info[field]), (field, info[field])
    assert re.fullmatch(r"\d+ (months|years)", info["CertLife"])
    assert info["CertType"] in ("cas", "upload") and info["Status"] in CERT_STATUSES
    assert info["CertRegion"] == "cn-hangzhou" and info["CertId"].isdigit()
    assert info["ServerCertificate"].startswith("-----BEGIN CERTIFICATE-----")


# -- DescribeCdnDomainConfigs (https://alibabacloud.com/help/zh/cdn/api-describecdndomainconfigs) -------------------
def test_domain_configs_answer_exactly_the_model_fields(cdn: CdnCall, site: str) -> None:
    """Each DomainConfig has ConfigId (a string), FunctionName, ParentId, Status (success, testing, failed or
    configuring) and FunctionArgs.FunctionArg[] of ArgName/ArgValue strings."""
    answer = cdn("DescribeCdnDomainConfigs", DomainName=site)
    assert set(answer) == {"RequestId", "DomainConfigs"}
    configs = answer["DomainConfigs"]["DomainConfig"]
    assert sorted(c["FunctionName"] for c in configs) == ["https_force", "https_tls_version"]
    for config in configs:
        assert set(config) == DOMAIN_CONFIG_FIELDS
        assert isinstance(config["ConfigId"], str) and config["ConfigId"].isdigit()
        assert config["Status"] in ("success", "testing", "failed", "configuring")
        for arg in config["FunctionArgs"]["FunctionArg"]:
            assert set(arg) == {"ArgName", "ArgValue"} and all(isinstance(v, str) for v in arg.values())


def test_domain_configs_filter_by_function_names_and_config_id(cdn: CdnCall, site: str) -> None:
    """FunctionNames is a comma-separated filter and ConfigId selects one configuration."""
    both = cdn("DescribeCdnDomainConfigs", DomainName=site, FunctionNames="https_force,https_tls_version")
    assert len(both["DomainConfigs"]["DomainConfig"]) == 2
    one = cdn("DescribeCdnDomainConfigs", DomainName=site, FunctionNames="https_force")["DomainConfigs"]
    (force,) = one["DomainConfig"]
    by_id = cdn("DescribeCdnDomainConfigs", DomainName=site, ConfigId=force["ConfigId"])["DomainConfigs"]
    assert [c["FunctionName"] for c in by_id["DomainConfig"]] == ["https_force"]
    assert cdn("DescribeCdnDomainConfigs", DomainName=site, FunctionNames="HSTS")["DomainConfigs"]["DomainConfig"] == []


# -- BatchSetCdnDomainConfig (https://help.aliyun.com/document_detail/90915.htm) -----------------------------------
def test_batch_set_answers_integer_config_ids_that_describe_lists_as_strings(cdn: CdnCall, site: str) -> None:
    """DomainConfigList.DomainConfigModel[] has DomainName, FunctionName and ConfigId, an integer in the model;
    DescribeCdnDomainConfigs lists the same id as a string."""
    answer = cdn("BatchSetCdnDomainConfig", DomainNames=site,
                 Functions=functions(("HSTS", {"enabled": "on", "https_hsts_max_age": "5184000"})))
    assert set(answer) == {"RequestId", "DomainConfigList"}
    (model,) = answer["DomainConfigList"]["DomainConfigModel"]
    assert set(model) == {"DomainName", "FunctionName", "ConfigId"}
    assert type(model["ConfigId"]) is int and (model["DomainName"], model["FunctionName"]) == (site, "HSTS")
    listed = cdn("DescribeCdnDomainConfigs", DomainName=site, FunctionNames="HSTS")["DomainConfigs"]["DomainConfig"]
    assert listed[0]["ConfigId"] == str(model["ConfigId"])


def test_batch_set_limits_are_fifty_domains_and_fifty_domain_function_pairs(cdn: CdnCall, site: str) -> None:
    """At most 50 domains per call, and the number of domains times the number of functions is at most 50; a call
    over either limit is refused with 400 and changes nothing."""
    one_function = functions(("https_force", {"enable": "off"}))
    fifty_one = ",".join([site] + [f"d{i}.example.com" for i in range(50)])
    assert error_of(cdn, "BatchSetCdnDomainConfig", DomainNames=fifty_one, Functions=one_function).http_status == 400
    twenty_six = ",".join([site] + [f"d{i}.example.com" for i in range(25)])
    two_functions = functions(("https_force", {"enable": "off"}), ("HSTS", {"enabled": "off",
                                                                           "https_hsts_max_age": "0"}))
    assert error_of(cdn, "BatchSetCdnDomainConfig", DomainNames=twenty_six,
                    Functions=two_functions).http_status == 400
    configs = cdn("DescribeCdnDomainConfigs", DomainName=site, FunctionNames="https_force,HSTS")["DomainConfigs"]
    assert [(c["FunctionName"], c["FunctionArgs"]["FunctionArg"]) for c in configs["DomainConfig"]] == [
        ("https_force", [{"ArgName": "enable", "ArgValue": "on"}])]


# -- SetCdnDomainSSLCertificate (https://help.aliyun.com/document_detail/2297005.htm) ------------------------------
def test_set_certificate_answers_only_the_request_id(cloud: LocalCloud, cdn: CdnCall, site: str) -> None:
    """The response body is ``{"RequestId"}``; CertRegion accepts the two documented regions."""
    cert = cloud.cas.find_by_name(cloud.default_account_id, "site-cert")
    assert cert is not None
    for region in ("cn-hangzhou", "ap-southeast-1"):
        answer = cdn("SetCdnDomainSSLCertificate", DomainName=site, SSLProtocol="on", CertType="cas",
                     CertId=str(cert.id), CertRegion=region)
        assert set(answer) == {"RequestId"}
        info = cdn("DescribeDomainCertificateInfo", DomainName=site)["CertInfos"]["CertInfo"][0]
        assert info["CertRegion"] == region


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"SSLProtocol": "maybe"}, "InvalidSSLProtocol.ValueNotSupported", "The specified SSLProtocol is invalid."),
    ({"SSLProtocol": "on", "CertType": "upload"}, "SSLPub.MissingParameter", "The SSLPub parameter is required."),
    ({"SSLProtocol": "on", "CertType": "upload", "SSLPub": "x"}, "SSLPri.MissingParameter",
     "The SSLPri parameter is required."),
    ({}, "MissingSSLProtocol", "SSLProtocol is mandatory for this action."),
])
def test_set_certificate_documented_errors(cdn: CdnCall, site: str, params: dict[str, str], code: str,
                                           message: str) -> None:
    """The reference's error table: 400 with the documented code and message; SSLProtocol is required."""
    error = error_of(cdn, "SetCdnDomainSSLCertificate", DomainName=site, **params)
    assert (error.http_status, error.error_code, error.message) == (400, code, message)


# -- DeleteSpecificConfig (https://help.aliyun.com/document_detail/102258.html) ------------------------------------
def test_delete_specific_config_takes_a_comma_list_and_answers_only_the_request_id(cdn: CdnCall, site: str) -> None:
    """ConfigId is a comma-separated list of the domain's config ids; the response body is ``{"RequestId"}``."""
    configs = cdn("DescribeCdnDomainConfigs", DomainName=site)["DomainConfigs"]["DomainConfig"]
    answer = cdn("DeleteSpecificConfig", DomainName=site, ConfigId=",".join(c["ConfigId"] for c in configs))
    assert set(answer) == {"RequestId"}
    assert cdn("DescribeCdnDomainConfigs", DomainName=site)["DomainConfigs"]["DomainConfig"] == []


# -- Required parameters and unknown domains, every action --------------------------------------------------------
DOMAIN_ACTIONS: list[tuple[str, str, dict[str, str]]] = [
    ("DescribeDomainCertificateInfo", "DomainName", {}),
    ("DescribeCdnDomainConfigs", "DomainName", {}),
    ("SetCdnDomainSSLCertificate", "DomainName", {"SSLProtocol": "off"}),
    ("BatchSetCdnDomainConfig", "DomainNames", {"Functions": functions(("https_force", {"enable": "on"}))}),
    ("DeleteSpecificConfig", "DomainName", {"ConfigId": "1"}),
]


@pytest.mark.parametrize(("action", "name_param", "params"), DOMAIN_ACTIONS)
def test_domain_name_is_required(cdn: CdnCall, site: str, action: str, name_param: str,
                                 params: dict[str, str]) -> None:
    """Each reference marks the domain parameter required; leaving it out is 400 Missing<Name>."""
    error = error_of(cdn, action, **params)
    assert (error.http_status, error.error_code) == (400, f"Missing{name_param}")


@pytest.mark.parametrize(("action", "name_param", "params"), DOMAIN_ACTIONS)
def test_unknown_or_foreign_domain_is_invalid_domain_not_found(cloud: LocalCloud, cdn: CdnCall, site: str,
                                                               action: str, name_param: str,
                                                               params: dict[str, str]) -> None:
    """A domain that does not exist, or is another account's, is 404 InvalidDomain.NotFound "The domain provided
    does not belong to you." (the CDN reference's error table)."""
    cloud.seed({"cdn_domains": [{"name": "theirs.example.com", "account": OTHER_ACCOUNT}]})
    for name in ("nowhere.example.com", "theirs.example.com"):
        error = error_of(cdn, action, **{name_param: name}, **params)
        assert (error.http_status, error.error_code, error.message) == (
            404, "InvalidDomain.NotFound", "The domain provided does not belong to you.")
    # The owner sees its domain (so the refusal above is about ownership, not the name).
    mine = cdn("DescribeDomainCertificateInfo", client=make_client(OTHER_KEY), DomainName="theirs.example.com")
    assert mine["CertInfos"]["CertInfo"][0]["DomainName"] == "theirs.example.com"
