#!/usr/bin/perl
# Perl HTTP::Tiny (core module): a GET with a custom header and a POST, keep-alive.
use strict;
use warnings;
use HTTP::Tiny;

my $base = shift or die "usage: $0 BASE\n";
my $http = HTTP::Tiny->new(keep_alive => 1);
my $a = $http->get("$base/hello?from=perl", { headers => { 'X-Tapline-Test' => 'perl' } });
die "GET failed: $a->{status}\n" unless $a->{success};
chomp(my $body = $a->{content});
print "GET $a->{status} $a->{headers}{'x-echo-query'} $body\n";
my $payload = 'p' x 1800;
my $b = $http->request('POST', "$base/echo?from=perl",
    { content => $payload, headers => { 'Content-Type' => 'text/plain' } });
die "POST failed: $b->{status}\n" unless $b->{success};
print "POST $b->{status}\n";
