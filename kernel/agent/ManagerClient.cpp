#include "agent/ManagerClient.hpp"

#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>

#include <sstream>

#include "common/Error.hpp"

namespace shoal::agent {

std::string ApiReply::errorMessage() const {
  if (status >= 200 && status < 300) return "";
  auto error = body->getObject("error");
  if (error && error->has("message")) return error->getValue<std::string>("message");
  return "HTTP status " + std::to_string(status);
}

ManagerClient::ManagerClient(std::string endpoint, Poco::Net::Context::Ptr context, std::string bearer)
    : endpoint_(std::move(endpoint)), context_(std::move(context)), bearer_(std::move(bearer)) {
  auto colon = endpoint_.rfind(':');
  if (colon == std::string::npos) throw Error(ErrorCode::InvalidArgument, "manager address '" + endpoint_ + "' is not host:port");
  host_ = endpoint_.substr(0, colon);
  if (host_.size() > 2 && host_.front() == '[' && host_.back() == ']') host_ = host_.substr(1, host_.size() - 2);
  port_ = static_cast<std::uint16_t>(std::stoi(endpoint_.substr(colon + 1)));
}

ManagerClient::~ManagerClient() = default;

ApiReply ManagerClient::call(const std::string& method, const std::string& pathAndQuery,
                             const Poco::JSON::Object::Ptr& body, std::chrono::milliseconds timeout,
                             const std::map<std::string, std::string>& headers) {
  std::string payload;
  if (body) {
    std::ostringstream out;
    body->stringify(out);
    payload = out.str();
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!session_) {
        session_ = std::make_unique<Poco::Net::HTTPSClientSession>(host_, port_, context_);
        session_->setKeepAlive(true);
      }
      session_->setTimeout(Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(timeout).count()));
      Poco::Net::HTTPRequest request(method, pathAndQuery, Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      if (!bearer_.empty()) request.set("Authorization", "Bearer " + bearer_);
      for (const auto& [name, value] : headers) request.set(name, value);
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(payload.size()));
      session_->sendRequest(request) << payload;
      Poco::Net::HTTPResponse response;
      std::istream& in = session_->receiveResponse(response);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      ApiReply reply;
      reply.status = static_cast<int>(response.getStatus());
      try {
        Poco::JSON::Parser parser;
        reply.body = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
      } catch (const std::exception&) {
        throw Error(ErrorCode::Failed, "the manager at " + endpoint_ + " answered " +
                                           std::to_string(reply.status) + " without JSON");
      }
      return reply;
    } catch (const Error&) {
      session_.reset();
      throw;
    } catch (const std::exception& e) {
      // A kept-alive connection the manager closed: try once more on a fresh one.
      session_.reset();
      if (attempt == 1)
        throw Error(ErrorCode::Failed, "cannot reach the manager at " + endpoint_ + ": " + e.what());
    }
  }
  throw Error(ErrorCode::Failed, "cannot reach the manager at " + endpoint_);
}

}  // namespace shoal::agent
