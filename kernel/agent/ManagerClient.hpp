#pragma once
// A node's HTTPS client of the manager API: JSON in, JSON out, bearer token, one kept-alive
// connection that is re-opened after a failure.
#include <Poco/JSON/Object.h>
#include <Poco/Net/Context.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace Poco::Net {
class HTTPSClientSession;
}

namespace shoal::agent {

struct ApiReply {
  int status = 0;
  Poco::JSON::Object::Ptr body;  // never null
  // The error message of a non-2xx answer ("" otherwise).
  std::string errorMessage() const;
};

class ManagerClient {
 public:
  // `endpoint` is "host:port".
  ManagerClient(std::string endpoint, Poco::Net::Context::Ptr context, std::string bearer);
  ~ManagerClient();

  // Throws Error(Failed) when the manager cannot be reached or answers no JSON. `headers` are
  // sent as given (an Idempotency-Key, say).
  ApiReply call(const std::string& method, const std::string& pathAndQuery,
                const Poco::JSON::Object::Ptr& body = nullptr,
                std::chrono::milliseconds timeout = std::chrono::seconds(30),
                const std::map<std::string, std::string>& headers = {});
  void setBearer(std::string bearer) { bearer_ = std::move(bearer); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::string host_;
  std::uint16_t port_ = 0;
  Poco::Net::Context::Ptr context_;
  std::string bearer_;
  std::unique_ptr<Poco::Net::HTTPSClientSession> session_;
};

}  // namespace shoal::agent
