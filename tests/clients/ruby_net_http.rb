# Ruby net/http: a GET with a custom header and a POST on one keep-alive connection.
require 'net/http'
require 'uri'

base = URI(ARGV.fetch(0))
Net::HTTP.start(base.host, base.port) do |http|
  get = Net::HTTP::Get.new('/hello?from=ruby')
  get['X-Tapline-Test'] = 'ruby'
  a = http.request(get)
  puts "GET #{a.code} #{a['X-Echo-Query']} #{a.body.strip}"
  post = Net::HTTP::Post.new('/echo?from=ruby')
  post['Content-Type'] = 'text/plain'
  post.body = 'r' * 2200
  b = http.request(post)
  puts "POST #{b.code}"
end
